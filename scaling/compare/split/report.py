"""The split report's report.md (for people) and compare.json (the same numbers, for scripts).

Every budget appears with its measured pipelines; its best share comes with its 95% interval where
the law finds it, and with the law's reason where it does not. The exchange rate likewise.
"""
from __future__ import annotations

import datetime
from pathlib import Path

from scaling.compare.report import _ci, _v, warnings_and_figures, write_report_files
from scaling.compare.split.analysis import Budget, ExchangeRate, SplitAnalysis
from scaling.compare.split.collect import CACHE_FILE, SplitData
from scaling.laws.isoflop import format_flops
from scaling.laws.results import jsonable


def _optimum_cell(b: Budget) -> str:
    if b.reason:
        return f"no optimum: {b.reason}"
    return f"{_v(b.share_opt)} {_ci(b.ci.get('share_opt'))}"


def _rate_text(r: ExchangeRate) -> str:
    if r.result is None:
        return f"undefined: {r.reason}"
    rate, ci = r.result.params["exchange_rate"], r.result.ci.get("exchange_rate")
    interval = f" (95% CI {min(ci):.3g}x – {max(ci):.3g}x)" if ci else " (no interval)"
    return f"**{rate:.3g}x** more test-time compute replaces 10x training compute at equal accuracy{interval}"


def markdown(d: SplitData, a: SplitAnalysis, rates: list[ExchangeRate], figures: list[Path], command: str | None,
             warnings: list[str]) -> str:
    lines = [f"# Pretraining/RL split: {d.source}", "",
             f"Generated {datetime.date.today().isoformat()}" + (f" by `{command}`" if command else "") + ".  ",
             f"Accuracy: {d.metric}.  ",
             ("Compute: FLOPs in the full convention, as run: total = pretraining FLOPs of the pipeline's base + its "
              "RL FLOPs (rollout + update); RL share f = RL / total. Budgets C are the planned totals.  "
              if d.point_runs
              else f"Compute: column {d.points.labels['C']!r}, RL share: column {d.points.labels['x']!r}.  "),
             f"Intervals: 95% percentile bootstrap over runs within a budget, {a.bootstrap} replicates." if a.bootstrap
             else "No bootstrap intervals (bootstrap 0).", ""]
    lines += _summary_section(a, rates) + _profiles(d, a) + _trend(a) + _test_time(d, rates)
    return "\n".join(lines + warnings_and_figures(warnings, figures)) + "\n"


def _summary_section(a: SplitAnalysis, rates: list[ExchangeRate]) -> list[str]:
    lines = ["## Summary", ""]
    for b in a.budgets:
        tried = f"best share tried {b.best_measured[0]:g} (accuracy {b.best_measured[1]:.4g})"
        best = f"best RL share {_optimum_cell(b)}" if not b.reason else f"no fitted optimum: {b.reason}"
        lines.append(f"- **C = {format_flops(b.C)}**: {best}; {tried}.")
    if a.share_trend_refusal() is None:
        p, ci = a.fit.params, a.fit.ci
        lines.append(f"- **Trend**: the best share moves by {_v(p['slope'])} {_ci(ci.get('slope'))} per decade of "
                     f"total compute (share_opt = intercept + slope·log10 C, intercept {_v(p['intercept'])} "
                     f"{_ci(ci.get('intercept'))}).")
    else:
        lines.append(f"- **Trend of the best share**: refused: {a.share_trend_refusal()}.")
    accuracy_refusal = a.fit.extra["refused"].get("accuracy_trend") if a.fit is not None else None
    if accuracy_refusal:
        lines.append(f"- **Trend of the best accuracy**: refused: {accuracy_refusal}.")
    for r in rates:
        lines.append(f"- **Exchange rate ({r.metric})**: {_rate_text(r)}.")
    return lines


def _profiles(d: SplitData, a: SplitAnalysis) -> list[str]:
    lines = ["", "## Iso-compute profiles (accuracy against RL share at fixed total compute)", "",
             f"{a.curve_note}. A budget's optimum is the vertex of that curve through the shares around it "
             "(`scaling fit split`); one it does not support is listed with the reason.", "",
             "| budget C (FLOPs) | pipelines | shares | f=0 accuracy | best share tried (accuracy) | "
             "fitted best share [95% CI] | accuracy there [95% CI] |", "|---:|---:|---|---:|---:|---|---|"]
    for b in a.budgets:
        shares = ", ".join(f"{s:g}" for s in sorted(set(round(s, 3) for s in b.shares)))
        acc = "–" if b.reason else f"{_v(b.accuracy_opt)} {_ci(b.ci.get('accuracy_opt'))}"
        lines.append(f"| {format_flops(b.C)} | {len(b.shares)} | {shares} | {_v(b.accuracy_f0)} | "
                     f"{b.best_measured[0]:g} ({b.best_measured[1]:.4g}) | {_optimum_cell(b)} | {acc} |")
    pts = d.points
    names = {r["run_id"]: r for r in d.pipelines}
    lines += ["", "Measured pipelines (the points of the figure):", "",
              "| budget C | RL share f (as run) | total FLOPs (as run) | accuracy | run |", "|---:|---:|---:|---:|---|"]
    for i in range(len(pts.y)):
        run = d.point_runs[i] if d.point_runs else None
        label = f"`{run}` {names[run].get('name') or ''}" if run else "–"
        lines.append(f"| {format_flops(pts.budget[i])} | {pts.x[i]:.4g} | {pts.C[i]:.4g} | {pts.y[i]:.4g} | {label} |")
    return lines


def _trend(a: SplitAnalysis) -> list[str]:
    lines = ["", "## Best share against total compute", ""]
    if a.fit is None:
        return lines + [f"Not fitted: {a.refusal}. The figure shows each budget's best share tried instead."]
    r = a.fit
    if r.params:
        lines += ["| parameter | value | 95% CI |", "|---|---:|---:|"]
        lines += [f"| {k} | {_v(v)} | {_ci(r.ci.get(k))} |" for k, v in r.params.items()]
    lines += [f"Refused, {what.replace('_', ' ')}: {why}." for what, why in r.extra["refused"].items()]
    holdout = r.extra.get("holdout")
    if holdout:
        lines += ["", f"Largest usable budget ({format_flops(holdout['budget'])}) predicted from the others: best "
                      f"share {holdout['share_pred']:.3g} (fitted {holdout['share_opt']:.3g}), best accuracy "
                      f"{holdout['accuracy_pred']:.4g} (fitted {holdout['accuracy_opt']:.4g}, error "
                      f"{holdout['accuracy_error']:+.3g})."]
    return lines + [""] + [f"- {n}" for n in r.notes] + [f"- warning: {w}" for w in r.warnings]


def _test_time(d: SplitData, rates: list[ExchangeRate]) -> list[str]:
    lines = ["", "## Test-time compute", ""]
    if d.settings is None:
        return lines + [f"Not measured: {d.not_measured}."]
    s = d.settings
    ks = d.models[0]["k"] if d.models else []
    lines += [f"Every pretrained model of the sweep and every RL run's final policy (f > 0; an f = 0 pipeline is its "
              f"base) drew {s.k} samples per problem on the first {s.problems} held-out `{s.task}` problems "
              f"(temperature {s.temperature:g}, ≤ {s.max_new} generated tokens, prompts ≤ {s.prompt_tokens} "
              "tokens), "
              "once; pass@k (unbiased estimator) and maj@k (majority vote over each disjoint block of k samples, "
              f"averaged) for k = {', '.join(map(str, ks))} come from them. Test-time compute of k samples = k × the "
              "forward FLOPs of one sample (prompt + generated tokens with the KV cache, full convention, mean over "
              f"samples). {d.evaluated} models evaluated now, {len(d.models) - d.evaluated} from `{CACHE_FILE}`.", ""]
    head = " | ".join(f"maj@{k}" for k in ks) + " | " + " | ".join(f"pass@{k}" for k in ks)
    lines += [f"| model | role | training FLOPs | FLOPs per sample | {head} |",
              "|---|---|---:|---:|" + "---:|" * (2 * len(ks))]
    for m in d.models:
        where = f" (C {format_flops(m['split_budget'])}, f {m['split_share']:g})" if m["role"] == "RL" else ""
        cells = " | ".join(f"{v:.3f}" for v in m["maj@k"] + m["pass@k"])
        lines.append(f"| `{m['run_id']}` {m['name']} | {m['role']}{where} | {m['train_flops']:.4g} | "
                     f"{m['sample_flops']:.4g} | {cells} |")
    for r in rates:
        lines += ["", f"### Exchange rate between training and test-time compute ({r.metric})", "", _rate_text(r) + "."]
        if r.result is not None:
            res = r.result
            lines += ["", "| model training FLOPs | logit accuracy per 10x test compute | R² |", "|---:|---:|---:|"]
            lines += [f"| {m['train_C']:.4g} | {m['test_slope']:.4g} | {m['r2']:.3f} |" for m in res.extra["models"]]
            lines += [""] + [f"- {n}" for n in res.notes] + [f"- warning: {w}" for w in res.warnings]
    return lines


def _budget_json(b: Budget, d: SplitData, index: list[int]) -> dict:
    points = [{"share": d.points.x[i], "total_flops": d.points.C[i], "accuracy": d.points.y[i],
               **({"run_id": d.point_runs[i]} if d.point_runs else {})} for i in index]
    optimum = None if b.reason else {"share_opt": b.share_opt, "accuracy_opt": b.accuracy_opt, "ci": b.ci}
    return {"C": b.C, "points": points, "optimum": optimum, "reason": b.reason or None,
            "best_share_tried": {"share": b.best_measured[0], "accuracy": b.best_measured[1]},
            "accuracy_f0": b.accuracy_f0}


def _rate_json(r: ExchangeRate) -> dict:
    if r.result is None:
        return {"metric": r.metric, "defined": False, "reason": r.reason}
    res = r.result
    return {"metric": r.metric, "defined": True, "exchange_rate": res.params["exchange_rate"],
            "slope": res.params["slope"], "ci": res.ci, "models": res.extra["models"], "levels": res.extra["levels"],
            "notes": res.notes, "warnings": res.warnings}


def to_json(d: SplitData, a: SplitAnalysis, rates: list[ExchangeRate], files: list[Path], warnings: list[str]) -> dict:
    budgets = []
    for b in a.budgets:
        budgets.append(_budget_json(b, d, [i for i in range(len(d.points.y)) if d.points.budget[i] == b.C]))
    refusal = a.share_trend_refusal()
    trend = {"fitted": refusal is None, **({"reason": refusal} if refusal else {}),
             **(a.fit.to_json() if a.fit is not None else {})}
    return jsonable({
        "kind": "split", "source": d.source, "metric": d.metric, "flop_convention": "full", "bootstrap": a.bootstrap,
        "curve": a.curve, "curve_note": a.curve_note, "budgets": budgets, "best_share_trend": trend,
        "test_time": {"settings": d.settings.to_json() if d.settings else None, "not_measured": d.not_measured,
                      "models": d.models, "exchange_rate": {r.metric: _rate_json(r) for r in rates}},
        "warnings": warnings, "files": [p.name for p in files]})


def write_text_outputs(d, a, rates, figures, command, warnings, out_dir: Path) -> list[Path]:
    text = markdown(d, a, rates, figures, command, warnings)
    return write_report_files(out_dir, text, figures, lambda files: to_json(d, a, rates, files, warnings))
