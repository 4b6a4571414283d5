"""`scaling train --dry-run`: what a run would be, checked as a real start checks it, with nothing written."""
from __future__ import annotations

from pathlib import Path

from scaling.config.model import MESH_AXES
from scaling.config.run import RunConfig
from scaling.model.attention_impl import current_platform, describe_attention
from scaling.train.loop import check_run
from scaling.train.rundir import check_run_dir, read_summary


def describe_run(cfg: RunConfig, out_dir: str | Path | None = None) -> list[str]:
    """Lines saying the model, budget, mesh and attention kernel of the run, and what --out holds."""
    budget, mesh, _ = check_run(cfg)
    c, t = budget.counts, cfg.train
    mesh_shape = " x ".join(f"{axis} {mesh.shape[axis]}" for axis in MESH_AXES)
    lines = [
        f"model: {cfg.model.name}, {c.n_params:,} parameters ({c.n_active_nonembedding:,} active non-embedding)",
        f"budget: {budget.steps:,} steps of {t.batch_size} x {t.seq_len} tokens = {budget.tokens:.3g} tokens, "
        f"{budget.flops(t.flop_convention):.3g} FLOPs [{t.flop_convention}]",
        f"mesh: {mesh_shape} on {mesh.devices.size} {current_platform()} device(s)",
        f"attention: {describe_attention(cfg.model, seq_len=t.seq_len)}",
    ]
    if out_dir is not None:
        if check_run_dir(Path(out_dir), cfg):
            summary = read_summary(Path(out_dir)) or {}
            lines.append(f"--out {out_dir}: holds this run ({summary.get('status', 'started')}); it would resume")
        else:
            lines.append(f"--out {out_dir}: a new run")
    return lines + ["dry run: nothing trained, nothing written"]
