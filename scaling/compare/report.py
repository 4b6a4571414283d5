"""report.md (for people, pasteable into a paper) and compare.json (the same numbers, for scripts).

Every number comes with its 95% bootstrap interval, the FLOP convention of its compute axis and
the run ids it was computed from; every quantity that could not be computed says why instead.
"""
from __future__ import annotations

import base64
import datetime
import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Callable

from scaling.compare.analysis import IN_RANGE, UNDEFINED, Comparison, LawFit, Slope
from scaling.compare.collect import CACHE_FILE, Collected
from scaling.laws.results import format_value, jsonable

LAW_NAMES = {"loglinear": "log-linear, y = a + b·log10 C", "sigmoid": "sigmoid (ScaleRL), R0 + (A−R0)/(1+(C_mid/C)^B)",
             "isoflop": "isoFLOP profiles (Hoffmann et al. Approach 2)",
             "chinchilla": "Chinchilla L(N, D) = E + A/N^α + B/D^β (Approach 3)",
             "power": "power law of eval loss in compute, L = E + A·C^−α"}


def _v(v) -> str:
    """4 significant figures; a fit's exact zero is printed 0, not -0."""
    return format_value(None if v is None else v + 0.0)


def _ci(ci) -> str:
    if not ci:
        return "(no interval)"
    hi = "∞" if math.isinf(ci[1]) else _v(ci[1])
    return f"[{_v(ci[0])}, {hi}]"


def _slope_text(s: Slope, axis: str) -> str:
    if s.value is None:
        return f"undefined ({s.reason})"
    return f"{s.value + 0.0:+.4f} accuracy per decade of {axis} {_ci(s.ci)}"


def _fit_table(law: LawFit) -> list[str]:
    if not law.ok:
        return [f"Not fitted: {law.reason}."]
    r = law.result
    rows = ["| parameter | value | 95% CI |", "|---|---:|---:|"]
    values = dict(r.params) | {k: r.extra[k] for k in ("a", "b", "G") if k in r.extra and k not in r.params}
    rows += [f"| {k} | {_v(v)} | {_ci(r.ci.get(k))} |" for k, v in values.items()]
    quality = f"; R² {r.r2:.4f}" if r.r2 is not None else ""
    return rows + ["", f"{r.n_points} points; {r.method}{quality}."] + [f"- warning: {w}" for w in r.warnings]


def _gain_cell(g) -> str:
    if g.status == UNDEFINED:
        return f"undefined: {g.reason}"
    flag = "" if g.status == IN_RANGE else f" ({g.status})"
    return f"×{_v(g.gain)} {_ci(g.ci)}{flag}"


def markdown(col: Collected, cmp: Comparison, loss: LawFit, loss_tried: list[str], figures: list[Path],
             notes: list[str], command: str | None) -> str:
    lines = (_header(col, cmp, command) + _summary_section(cmp) + _data(col, cmp) + _accuracy_laws(cmp) + _gains(cmp)
             + _loss_law(col, cmp, loss, loss_tried) + _checks(col))
    return "\n".join(lines + warnings_and_figures(col.warnings + cmp.warnings + notes, figures)) + "\n"


def warnings_and_figures(warnings: list[str], figures: list[Path]) -> list[str]:
    """The closing sections of a report.md: its warnings, then each PNG with a link to its SVG."""
    lines = ["", "## Warnings", ""] + [f"- {w}" for w in warnings] if warnings else []
    lines += ["", "## Figures", ""]
    for path in figures:
        if path.suffix == ".png":
            lines += [f"![{path.stem}]({path.name})", f"({path.stem}: [SVG]({path.stem}.svg))", ""]
    return lines


def _header(col: Collected, cmp: Comparison, command: str | None) -> list[str]:
    s = col.settings
    metric = (f"{col.metric_label} of `{s.task.name}` {json.dumps(s.task.params)} (prompts ≤ {s.prompt_tokens} "
              f"tokens, ≤ {s.sampling.max_new} generated tokens)")
    if s.eval.pass_k > 1 and col.metric == "greedy":
        metric += (f"; sampled pass@{s.eval.pass_k} on the first {s.eval.pass_k_problems} "
                   f"(temperature {s.sampling.temperature:g})")
    return [f"# Pretraining vs RL compute on {s.task.name}", "",
            f"Pretraining sweep `{col.pretrain_dir}` ({len(cmp.pretrain)} runs); RL sweep `{col.rl_dir}` "
            f"({len(cmp.rl)} runs).  ",
            f"Generated {datetime.date.today().isoformat()}" + (f" by `{command}`" if command else "") + ".  ",
            f"Metric: {metric}, the RL runs' own evaluation, applied to every pretrained model "
            f"({col.evaluated} evaluated now, {len(cmp.pretrain) - col.evaluated} from `{CACHE_FILE}`).  ",
            "Compute: FLOPs in the full convention (matmuls incl. attention scores and the output layer) on both "
            "accuracy axes; an RL point sits at its starting model's pretraining FLOPs + its cumulative RL FLOPs "
            "(rollout + update).  ",
            f"Intervals: 95% percentile bootstrap over points, {cmp.bootstrap} replicates." if cmp.bootstrap else
            "No bootstrap intervals (bootstrap 0).", ""]


def _summary_section(cmp: Comparison) -> list[str]:
    pre_ids = ", ".join(f"`{p.run_id}`" for p in cmp.pretrain)
    lines = ["## Summary", "",
             f"- **A decade more pretraining compute**: {_slope_text(cmp.slopes['pretrain'], 'pretraining FLOPs')} "
             f"(log-linear fit over {len(cmp.pretrain)} pretrained models: {pre_ids})."]
    for init in cmp.rl_fits:
        slope = cmp.slopes[f"rl:{init}"]
        lines.append(f"- **A decade more RL compute** from `{init}`: {_slope_text(slope, 'RL FLOPs')} "
                     f"({slope.n_points} evaluations pooled over RL run(s) {', '.join(f'`{r}`' for r in slope.runs)}).")
    for g in (g for g in cmp.gains if g.final and g.law == "loglinear"):
        lines.append(f"- **Compute-equivalent gain** of RL run `{g.run_id}` (final, accuracy {g.accuracy:.4g} after "
                     f"{g.spent:.4g} FLOPs): {_gain_cell(g)}.")
    return lines


def _data(col: Collected, cmp: Comparison) -> list[str]:
    k = col.settings.eval.pass_k
    extra_head, extra_rule = (f" pass@{k} |", "---:|") if k > 1 else ("", "")

    def pass_k(e: dict) -> str:
        return f" {_v(e.get(f'pass@{k}'))} |" if k > 1 else ""

    lines = ["", "## Data", "", "Pretrained models (evaluated here on the RL task):", "",
             f"| run id | name | N | tokens | FLOPs (6N) | FLOPs (full) | eval loss | {col.metric_name} |" + extra_head,
             "|---|---|---:|---:|---:|---:|---:|---:|" + extra_rule]
    for p in cmp.pretrain:
        e = p.extra
        lines.append(f"| `{p.run_id}` | {p.name} | {e.get('n_params') or '–'} | {e.get('tokens') or '–'} | "
                     f"{_v(e.get('flops_6n'))} | {p.flops:.4g} | {_v(e.get('eval_loss'))} | {p.accuracy:.4g} |"
                     + pass_k(e))
    lines += ["", "RL runs (final accuracy and RL FLOPs as recorded in the RL sweep's registry):", "",
              "| run id | name | starting model | pretraining FLOPs (full) | RL FLOPs (full) | total FLOPs (full) | "
              f"{col.metric_name} at start | final |" + extra_head, "|---|---|---|---:|---:|---:|---:|---:|" + extra_rule]
    for r in cmp.rl:
        start = _v(r.initial_accuracy) if r.initial_accuracy is not None else "–"
        lines.append(f"| `{r.run_id}` | {r.name} | `{r.init_run_id}` | {r.init_flops:.4g} | {r.final.rl_flops:.4g} | "
                     f"{r.total_flops:.4g} | {start} | {r.final.accuracy:.4g} |" + pass_k(r.extra))
    return lines


def _accuracy_laws(cmp: Comparison) -> list[str]:
    lines = ["", "## Pretraining accuracy law (x: pretraining FLOPs, full)", ""]
    for law in ("loglinear", "sigmoid"):
        lines += [f"### {LAW_NAMES[law]}", ""] + _fit_table(cmp.pretrain_fits[law]) + [""]
    lines += ["## RL accuracy law (x: cumulative RL FLOPs, full), per starting model", ""]
    for init, fits in cmp.rl_fits.items():
        for law in ("loglinear", "sigmoid"):
            lines += [f"### From `{init}`: {LAW_NAMES[law]}", ""] + _fit_table(fits[law]) + [""]
    return lines


def _gains(cmp: Comparison) -> list[str]:
    lines = ["## Compute-equivalent gain of RL", "",
             "Pretraining FLOPs the fitted pretraining curve needs to reach an RL run's accuracy, divided by the FLOPs "
             "that run spent (pretraining of its starting model + RL), all full convention. Above 1: RL reached the "
             "accuracy more cheaply than more pretraining would have. Interval: the pretraining fit's bootstrap "
             "replicates (∞: some replicates never reach that accuracy). Every evaluation along the RL curves is in "
             "`compare.json`; the final ones:", "",
             "| RL run | step | accuracy | FLOPs spent | pretraining law | pretraining FLOPs needed | gain [95% CI] |",
             "|---|---:|---:|---:|---|---:|---|"]
    for g in (g for g in cmp.gains if g.final):
        lines.append(f"| `{g.run_id}` | {g.step} | {g.accuracy:.4g} | {g.spent:.4g} | {g.law} | "
                     f"{_v(g.c_eq) if g.c_eq else '–'} | {_gain_cell(g)} |")
    return lines


def _loss_law(col: Collected, cmp: Comparison, loss: LawFit, loss_tried: list[str]) -> list[str]:
    lines = ["", f"## Pretraining loss law (x: the sweep's `flops`, {col.loss_convention} convention)", ""]
    if not loss.ok:
        return lines + [loss.reason[0].upper() + loss.reason[1:] + "."]
    lines += [f"### {LAW_NAMES[loss.law]}", ""] + _fit_table(loss) + _loss_details(loss)
    lines += [f"- not used: {t}" for t in loss_tried]
    return lines + ["", f"Reproduce with `scaling fit {loss.law} {col.pretrain_dir} --bootstrap {cmp.bootstrap}` "
                        f"(runs: {', '.join(f'`{p.run_id}`' for p in cmp.pretrain)})."]


def _checks(col: Collected) -> list[str]:
    lines = ["", "## Checks", ""]
    for c in col.checks:
        verdict = "equal" if c["equal"] else "DIFFERENT"
        lines.append(f"- RL run `{c['rl_run_id']}` measured its starting model `{c['init_run_id']}` at "
                     f"{c['rl_initial_accuracy']:.4g} before its first step; this comparison measures "
                     f"{c['compare_accuracy']:.4g} ({verdict}).")
    if not col.checks:
        lines.append("- No RL run records an evaluation of its starting model that this comparison could check.")
    return lines


def _loss_details(loss: LawFit) -> list[str]:
    e = loss.result.extra
    if loss.law == "isoflop":
        rows = ["", "| budget C (FLOPs) | N_opt | D_opt | L_opt |", "|---:|---:|---:|---:|"]
        return rows + [f"| {b['C']:.3g} | {b['N_opt']:.4g} | {b['D_opt']:.4g} | {b['L_opt']:.4g} |" for b in e["budgets"]]
    if loss.law == "chinchilla":
        return ["", f"Compute-optimal allocation (C = 6ND): N_opt ∝ C^{e['a']:.4f}, D_opt ∝ C^{e['b']:.4f}."]
    return []


def _law_json(law: LawFit) -> dict:
    return law.result.to_json() if law.ok else {"law": law.law, "fitted": False, "reason": law.reason}


def to_json(col: Collected, cmp: Comparison, loss: LawFit, loss_tried: list[str], files: list[Path],
            notes: list[str]) -> dict:
    return jsonable({
        "pretrain_sweep": str(col.pretrain_dir), "rl_sweep": str(col.rl_dir),
        "eval": col.settings.to_json(), "metric": col.metric_name, "metric_label": col.metric_label,
        "flop_convention": {"accuracy_axes": "full", "loss_law": col.loss_convention},
        "bootstrap": cmp.bootstrap,
        "pretrain": {"points": [asdict(p) for p in cmp.pretrain], "fitted_range": list(cmp.pretrain_range),
                     "fits": {k: _law_json(v) for k, v in cmp.pretrain_fits.items()},
                     "per_decade": asdict(cmp.slopes["pretrain"])},
        "rl": {"runs": [asdict(r) | {"total_flops": r.total_flops, "final_accuracy": r.final.accuracy,
                                     "rl_flops": r.final.rl_flops} for r in cmp.rl],
               "by_init": {init: {"fits": {k: _law_json(v) for k, v in fits.items()},
                                  "per_decade": asdict(cmp.slopes[f"rl:{init}"])} for init, fits in cmp.rl_fits.items()}},
        "compute_equivalent_gain": [asdict(g) for g in cmp.gains],
        "loss_law": _law_json(loss) | {"not_used": loss_tried},
        "checks": col.checks, "warnings": col.warnings + cmp.warnings + notes,
        "files": [p.name for p in files],
    })


def html(md_text: str, out_dir: Path) -> str | None:
    """report.md as one self-contained page (figures inlined), via markdown-it (which rich brings);
    None without it."""
    try:
        from markdown_it import MarkdownIt
    except ImportError:
        return None
    body = MarkdownIt("commonmark").enable("table").render(md_text)
    for png in out_dir.glob("*.png"):
        data = base64.b64encode(png.read_bytes()).decode()
        body = body.replace(f'src="{png.name}"', f'src="data:image/png;base64,{data}"')
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;line-height:1.45}"
             "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px}img{max-width:100%}")
    return f"<!doctype html><meta charset=utf-8><title>compare</title><style>{style}</style>\n{body}"


def write_text_outputs(col, cmp, loss, loss_tried, figures, notes, command, out_dir: Path) -> list[Path]:
    """report.md, report.html (when markdown-it is there) and compare.json, into out_dir (where the
    figures already are)."""
    text = markdown(col, cmp, loss, loss_tried, figures, notes, command)
    return write_report_files(out_dir, text, figures, lambda files: to_json(col, cmp, loss, loss_tried, files, notes))


def write_report_files(out_dir: Path, text: str, figures: list[Path],
                       to_json: Callable[[list[Path]], dict]) -> list[Path]:
    """report.md, report.html (when markdown-it is there) and compare.json (`to_json(every file written)`)."""
    md, page, js = out_dir / "report.md", html(text, out_dir), out_dir / "compare.json"
    md.write_text(text)
    written = [md]
    if page is not None:
        (out_dir / "report.html").write_text(page)
        written.append(out_dir / "report.html")
    js.write_text(json.dumps(to_json(figures + written + [js]), indent=1, allow_nan=False) + "\n")
    return written + [js]
