"""`scaling demo`: the whole pipeline on the built-in corpora, on a laptop CPU.

    1. isoflop   pretraining isoFLOP sweep on stdlib-code, 4 budgets  → the loss law (isoFLOP, Chinchilla)
    2. math      pretraining sweep on synthetic-math, 6 models        → the pretraining accuracy axis
    3. rlvr      GRPO from the 3 most-trained math models             → accuracy vs RL compute
    4. laws      `scaling plot` of sweep 1;  compare  `scaling compare --metric pass@1` of sweeps 2 and 3

Every step is the command a user would run by hand (the sweeps resume, compare caches its
evaluations), so a second `scaling demo` only refits and redraws. The loss law comes from
stdlib-code because byte-level Python source is a real corpus with a smooth loss; the comparison
needs a task a program can check, hence synthetic-math (see README, "The demo").
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import yaml

from scaling.bundled import BUNDLED
from scaling.errors import RunFailed, UserError


@dataclass(frozen=True)
class DemoSweeps:
    isoflop: Path  # kind pretrain, design isoflop: the loss law
    math: Path  # kind pretrain on synthetic-math: the models RL starts from
    rlvr: Path  # kind rlvr; its init.sweep is replaced by the demo's own math sweep dir

    @classmethod
    def bundled(cls) -> "DemoSweeps":
        return cls(BUNDLED / "sweeps/demo-cpu-isoflop.yaml", BUNDLED / "sweeps/demo-math-cpu.yaml",
                   BUNDLED / "sweeps/rlvr-cpu.yaml")

    def check(self) -> None:
        for name, path in self.__dict__.items():
            if not Path(path).is_file():
                raise UserError(f"demo: {name} sweep file {path} not found (run from a checkout of the repository)")


def default_out(seed: int) -> Path:
    """Each seed's demo has its own folder, so a second seed never resumes (or overwrites) the first."""
    return Path("runs/demo" if seed == 0 else f"runs/demo-seed{seed}")


def run_demo(out: Path, sweeps: DemoSweeps | None = None, max_parallel: int = 2, bootstrap: int = 200,
             seed: int = 0, metric: str = "pass@1", say: Callable[[str], None] = print) -> dict:
    """Run (or resume) every step into `out`; returns the paths written and the summary lines.

    `seed` is every seed of the pipeline: the sweeps' `seeds:` (train.seed: initialisation and data
    order of each pretraining run; the RL runs' seed: training problems, rollouts and the sampling of
    sampled pass@k) and the bootstrap seed of every fit. The held-out problems stay the same for every
    seed (a fixed test set), so seeds differ only in what they should. `metric`: see `scaling compare`."""
    from scaling.compare import run_compare
    from scaling.headline import headline_numbers, write_headline
    from scaling.laws import Columns
    from scaling.plots import make_report

    sweeps = sweeps or DemoSweeps.bundled()
    sweeps.check()
    out = Path(out).resolve()
    dirs = {name: out / name for name in ("isoflop", "math", "rlvr", "laws", "compare")}
    # All three written (and checked against an earlier demo in OUT) before anything runs.
    files = {"isoflop": _sweep_file_for(sweeps.isoflop, out, seed), "math": _sweep_file_for(sweeps.math, out, seed),
             "rlvr": _sweep_file_for(sweeps.rlvr, out, seed, init_sweep=dirs["math"])}
    started = time.time()

    def step(n: int, text: str) -> None:
        say(f"\n[{n}/5 {_clock(time.time() - started)}] {text}")

    step(1, f"pretraining isoFLOP sweep on stdlib-code ({sweeps.isoflop.name}, seed {seed}) → {dirs['isoflop']}")
    _submit(files["isoflop"], dirs["isoflop"], max_parallel)
    step(2, f"pretraining sweep on synthetic-math ({sweeps.math.name}, seed {seed}) → {dirs['math']}")
    _submit(files["math"], dirs["math"], max_parallel)
    step(3, f"RLVR sweep from the math models ({sweeps.rlvr.name}, seed {seed}) → {dirs['rlvr']}")
    _submit(files["rlvr"], dirs["rlvr"], max_parallel)
    step(4, f"fitting the loss laws of sweep 1 → {dirs['laws']}")
    # The fits read the sweep's design N (active non-embedding parameters) from its registry by default.
    laws = make_report(dirs["isoflop"], dirs["laws"], Columns(), bootstrap=bootstrap, seed=seed,
                       title="Demo: stdlib-code isoFLOP sweep",
                       command=f"scaling plot {dirs['isoflop']} --out {dirs['laws']}")
    step(5, f"comparing pretraining and RL compute → {dirs['compare']}")
    cmp = run_compare(dirs["math"], dirs["rlvr"], dirs["compare"], bootstrap=bootstrap, seed=seed, metric=metric,
                      log=say)
    summary = summary_lines(laws.fits, cmp.comparison, cmp.collected.metric_name)
    write_headline(out, headline_numbers(laws.fits, cmp.comparison, seed, cmp.collected.metric_name))
    say(f"\nDone in {_clock(time.time() - started)}. Reports:\n  {dirs['compare'] / 'report.md'}\n"
        f"  {dirs['laws'] / 'report.md'}\nFigures: {dirs['laws']}/*.png, {dirs['compare']}/*.png\n")
    for line in summary:
        say(line)
    return {"dirs": dirs, "summary": summary, "laws": laws, "compare": cmp}


def _submit(sweep_file: Path, sweep_dir: Path, max_parallel: int) -> None:
    """One sweep of the demo; the next step needs all of its runs, so an interrupted one stops the demo."""
    from scaling.sweep.submit import submit

    if submit(sweep_file, sweep_dir, max_parallel=max_parallel):
        raise RunFailed(f"{sweep_dir}: some runs were interrupted; run the demo again to resume them")


def _sweep_file_for(template: Path, out: Path, seed: int, init_sweep: Path | None = None) -> Path:
    """The sweep file as this demo runs it: `seeds: [seed]`, its base made absolute and (RL) its
    `init.sweep` pointed at this demo's math sweep. Written to OUT/sweeps/ so the user can see, and
    resubmit, exactly what ran."""
    spec = yaml.safe_load(template.read_text())
    spec["seeds"] = [seed]
    if init_sweep is not None:
        spec["init"] = {**spec.get("init", {}), "sweep": str(init_sweep)}
    if isinstance(spec.get("base"), str) and not Path(spec["base"]).is_absolute():
        base = template.parent / spec["base"]
        spec["base"] = str((base if base.exists() else BUNDLED / spec["base"]).resolve())
    target = out / "sweeps" / template.name
    if target.is_file():
        before = (yaml.safe_load(target.read_text()) or {}).get("seeds")
        if before != [seed]:
            raise UserError(f"--out {out}: holds the demo of seeds {before}, not --seed {seed}; give another --out "
                            f"(default for this seed: {default_out(seed)})")
    target.parent.mkdir(parents=True, exist_ok=True)
    text = (f"# Written by `scaling demo --seed {seed}` from {template}: seeds, base"
            f"{' and init.sweep' if init_sweep is not None else ''} set.\n")
    text += yaml.safe_dump(spec, sort_keys=False)
    if not target.exists() or target.read_text() != text:
        target.write_text(text)
    return target


def summary_lines(law_fits: dict, comparison, metric: str = "greedy pass@1") -> list[str]:
    """Five lines: the isoFLOP exponents, the Chinchilla fit, accuracy per decade of pretraining and of
    RL compute, and the compute-equivalent gain of RL; each with its 95% bootstrap interval. A
    Chinchilla fit the data cannot support (E at its bound, an exponent's interval spanning orders of
    magnitude) is given as refused, with the reason."""
    from scaling.laws.support import unsupported

    iso, chin = law_fits.get("isoflop"), law_fits.get("chinchilla")
    lines = []
    if iso is not None:
        lines.append(f"isoFLOP (stdlib-code, C=6ND): N_opt ∝ C^{_ci(iso, 'a')}, D_opt ∝ C^{_ci(iso, 'b')}")
    else:
        lines.append("isoFLOP (stdlib-code): no fit (too few budgets with an interior loss minimum; see laws/report.md)")
    refused = unsupported(chin) if chin is not None else None
    if refused:
        lines.append(f"Chinchilla (stdlib-code): refused ({refused})")
    elif chin is not None:
        lines.append(f"Chinchilla (stdlib-code): L = E + A/N^α + B/D^β with E={_ci(chin, 'E')}, α={_ci(chin, 'alpha')}, "
                     f"β={_ci(chin, 'beta')}")
    else:
        lines.append("Chinchilla (stdlib-code): no fit")
    pre = comparison.slopes.get("pretrain")
    lines.append(f"pretraining (synthetic-math): {_slope(pre)} {metric} per decade of pretraining FLOPs (full)")
    rl = [(k[3:], s) for k, s in comparison.slopes.items() if k.startswith("rl:")]
    lines.append("RLVR: " + ("; ".join(f"{_slope(s)} per decade of RL FLOPs from {init}" for init, s in rl) or
                             "no RL runs"))
    finals = [g for g in comparison.gains if g.final and g.law == "loglinear"]
    done = [g for g in finals if g.gain is not None]
    if done:
        lines.append("compute-equivalent gain of RL (pretraining FLOPs for the same accuracy / FLOPs spent): " +
                     ", ".join(f"{g.gain:.2g}×" for g in done))
    else:
        reasons = sorted({g.status for g in finals}) or ["no RL runs"]
        lines.append(f"compute-equivalent gain of RL: undefined ({', '.join(reasons)}; see compare/report.md)")
    return lines


def _ci(result, key: str) -> str:
    value = result.params[key]
    lo_hi = result.ci.get(key)
    return f"{value:.3g}" + (f" [{lo_hi[0]:.3g}, {lo_hi[1]:.3g}]" if lo_hi else "")


def _slope(slope) -> str:
    if slope is None or slope.value is None:
        return f"undefined ({slope.reason if slope else 'no data'})"
    return f"{slope.value:+.3f}" + (f" [{slope.ci[0]:+.3f}, {slope.ci[1]:+.3f}]" if slope.ci else "")


def _clock(seconds: float) -> str:
    return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
