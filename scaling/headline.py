"""The demo's headline numbers, and their noise floor across seeds.

Every `scaling demo` writes OUT/headline.json: each number of its five-line summary (with its 95% interval),
keyed by what it measures, not by run ids, so two seeds' files line up. `scaling demo --noise-floor DIR DIR...`
reads two or more of them (different seeds) and reports, per number, each seed's value and the spread
between seeds: a difference between two demos smaller than that spread is noise, not a finding.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from scaling.errors import UserError
from scaling.files import write_atomic

HEADLINE = "headline.json"


def headline_numbers(law_fits: dict, comparison, seed: int, metric: str) -> dict[str, Any]:
    """{"seed", "metric", "numbers": {name: {"value", "ci"}}} from the demo's fits (refused fits left out)."""
    from scaling.laws.support import unsupported

    numbers: dict[str, dict] = {}

    def put(name: str, value, ci=None) -> None:
        if value is not None:
            numbers[name] = {"value": float(value), "ci": [float(c) for c in ci] if ci else None}

    iso, chin = law_fits.get("isoflop"), law_fits.get("chinchilla")
    for key, what in (("a", "N_opt ∝ C^a"), ("b", "D_opt ∝ C^b")) if iso is not None else ():
        put(f"isoFLOP exponent {key} ({what})", iso.params[key], iso.ci.get(key))
    if chin is not None and not unsupported(chin):
        for key in ("alpha", "beta"):
            put(f"Chinchilla {key}", chin.params[key], chin.ci.get(key))
    pre = comparison.slopes.get("pretrain")
    if pre is not None:
        put(f"pretraining: {metric} per decade of compute", pre.value, pre.ci)
    if comparison.pretrain:
        put(f"pretraining: best model's {metric}", max(p.accuracy for p in comparison.pretrain))
    names = {p.run_id: _model_name(p.name, p.run_id) for p in comparison.pretrain}
    for run in comparison.rl:
        base = names.get(run.init_run_id, run.init_run_id)
        slope = comparison.slopes.get(f"rl:{run.init_run_id}")
        if slope is not None:
            put(f"RL from {base}: {metric} per decade of RL compute", slope.value, slope.ci)
        if run.curve and run.initial_accuracy is not None:
            put(f"RL from {base}: gain over the run", run.curve[-1].accuracy - run.initial_accuracy)
        gain = next((g for g in comparison.gains if g.final and g.law == "loglinear" and g.run_id == run.run_id
                     and g.gain is not None), None)
        if gain is not None:
            put(f"RL from {base}: compute-equivalent gain (×)", gain.gain,
                gain.ci if gain.ci and all(c is not None and math.isfinite(c) for c in gain.ci) else None)
    return {"seed": seed, "metric": metric, "numbers": numbers}


def _model_name(name: str, run_id: str) -> str:
    """A run's name without its id (math-27k-D2e6-138c0644d0a4 -> math-27k-D2e6): the same across seeds."""
    return name[: -len(run_id) - 1] if name.endswith(f"-{run_id}") else name


def write_headline(out: Path, headline: dict) -> Path:
    path = Path(out) / HEADLINE
    write_atomic(path, json.dumps(headline, indent=1, ensure_ascii=False) + "\n")
    return path


def noise_floor(demo_dirs: list[Path]) -> dict[str, Any]:
    """Per headline number present in every demo: each seed's value, and the spread (max − min) between seeds."""
    heads = [_read(Path(d)) for d in demo_dirs]
    seeds = [h["seed"] for h in heads]
    if len(heads) < 2:
        raise UserError("--noise-floor: needs the folders of at least two demos (different --seed)")
    if len(set(seeds)) < len(seeds):
        raise UserError(f"--noise-floor: the demos' seeds {seeds} repeat; a noise floor needs different seeds")
    if len({h["metric"] for h in heads}) > 1:
        metrics = sorted({h["metric"] for h in heads})
        raise UserError(f"--noise-floor: the demos use different accuracy metrics ({metrics})")
    shared = [n for n in heads[0]["numbers"] if all(n in h["numbers"] for h in heads)]
    rows = []
    for name in shared:
        values = [h["numbers"][name]["value"] for h in heads]
        rows.append({"number": name, "values": values, "cis": [h["numbers"][name]["ci"] for h in heads],
                     "spread": max(values) - min(values),
                     "ratio": max(values) / min(values) if min(values) > 0 and name.endswith("(×)") else None})
    missing = sorted({n for h in heads for n in h["numbers"]} - set(shared))
    return {"seeds": seeds, "metric": heads[0]["metric"], "dirs": [str(d) for d in demo_dirs], "rows": rows,
            "not_in_every_demo": missing}


def _read(demo_dir: Path) -> dict:
    path = demo_dir / HEADLINE
    try:
        head = json.loads(path.read_text())
        if not isinstance(head.get("numbers"), dict) or "seed" not in head:
            raise ValueError
    except (OSError, ValueError, AttributeError):
        raise UserError(f"--noise-floor: {path}: not found or not written by `scaling demo` (run the demo there "
                        "first)") from None
    return head


def noise_floor_markdown(floor: dict) -> str:
    seeds = floor["seeds"]
    lines = [f"# Noise floor of the demo's headline numbers over seeds {', '.join(map(str, seeds))}", "",
             f"Demos: {', '.join(floor['dirs'])}. Accuracy: {floor['metric']}. Spread: largest minus smallest value "
             "over the seeds (for compute-equivalent gains also their ratio); a difference between two demos "
             "smaller than it is within seed noise.", "",
             "| number | " + " | ".join(f"seed {s}" for s in seeds) + " | spread |",
             "|---|" + "---:|" * (len(seeds) + 1)]
    for row in floor["rows"]:
        cells = [f"{v:.3g}" + (f" [{ci[0]:.3g}, {ci[1]:.3g}]" if ci else "")
                 for v, ci in zip(row["values"], row["cis"])]
        spread = f"{row['spread']:.3g}" + (f" ({row['ratio']:.3g}×)" if row["ratio"] else "")
        lines.append(f"| {row['number']} | " + " | ".join(cells) + f" | {spread} |")
    if floor["not_in_every_demo"]:
        lines += ["", "Not in every demo (a fit refused, or another RL base): " + "; ".join(floor["not_in_every_demo"])]
    return "\n".join(lines) + "\n"


def write_noise_floor(demo_dirs: list[Path], out: Path) -> tuple[Path, str]:
    floor = noise_floor(demo_dirs)
    out.mkdir(parents=True, exist_ok=True)
    text = noise_floor_markdown(floor)
    write_atomic(out / "noise_floor.md", text)
    write_atomic(out / "noise_floor.json", json.dumps(floor, indent=1, ensure_ascii=False) + "\n")
    return out / "noise_floor.md", text
