"""Metrics: metrics.jsonl (one JSON object per logged step, wall-clock stamped), TensorBoard events (on by
default), terminal progress, and the device peak FLOP/s used for MFU (dense bf16 peaks, never the 2:4-sparse ones)."""
from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import jax


# Dense bf16 tensor-core peaks in FLOP/s, by a substring of jax's device_kind.
DENSE_BF16_PEAK = {
    "H200": 989e12,
    "H100 PCIe": 756e12,
    "H100": 989e12,
    "GH200": 989e12,
    "B200": 2250e12,
    "A100": 312e12,
    "L40S": 362e12,
    "L4": 121e12,
    "A10G": 70e12,
    "TPU v6": 918e12,
    "TPU v5p": 459e12,
    "TPU v5 lite": 197e12,
    "TPU v5e": 197e12,
    "TPU v4": 275e12,
}


def device_peak_flops() -> float | None:
    """Peak dense bf16 FLOP/s of the run's devices (all processes') together, or None where unknown (CPU)."""
    devices = jax.devices()
    kind = devices[0].device_kind
    for name, peak in DENSE_BF16_PEAK.items():
        if name.lower() in kind.lower():
            return peak * len(devices)
    return None


def device_description() -> str:
    devices = jax.devices()
    processes = f", {jax.process_count()} processes" if jax.process_count() > 1 else ""
    return f"{len(devices)}x {devices[0].device_kind} ({jax.default_backend()}{processes})"


class MetricsLog:
    """Append-only metrics.jsonl; on resume, lines past the restored step are dropped first so the file
    ends up identical to an uninterrupted run's."""

    def __init__(self, run_dir: Path, resume_step: int, tensorboard: bool = False, wandb=None,
                 config: dict | None = None, where: str = "train.wandb"):
        """`wandb`: a WandbConfig (or None), `config`: the resolved run config it is given."""
        self.path = run_dir / "metrics.jsonl"
        self._truncate_after(resume_step)
        self.file = self.path.open("a")
        self.tb = self.wandb = None
        if tensorboard:
            from tensorboardX import SummaryWriter  # a dependency: runs write TensorBoard events by default

            self.tb = SummaryWriter(str(run_dir / "tensorboard"))
        if wandb is not None:
            from scaling.train.wandb_log import WandbRun

            self.wandb = WandbRun(wandb, run_dir, config or {}, where)

    def _truncate_after(self, step: int) -> None:
        if not self.path.exists():
            return
        kept = []
        for line in self.path.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                break  # a line cut by a crash: everything after it is gone too
            if record.get("step", 0) <= step:
                kept.append(line)
        self.path.write_text("".join(k + "\n" for k in kept))

    def write(self, record: dict) -> None:
        record = {**record, "time": round(time.time(), 3)}  # wall clock (unix s), as trackers stamp records
        clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}
        self.file.write(json.dumps(clean) + "\n")
        self.file.flush()
        if self.tb is not None:
            for key, value in record.items():
                if isinstance(value, (int, float)) and key not in ("step", "time") and value is not None:
                    self.tb.add_scalar(key, value, record["step"])
        if self.wandb is not None:
            self.wandb.log(record)

    def close(self) -> None:
        self.file.close()
        if self.tb is not None:
            self.tb.close()
        if self.wandb is not None:
            self.wandb.close()


class NoMetricsLog:
    """The metrics log of processes other than 0: process 0 alone writes the run's files."""

    def write(self, record: dict) -> None:
        pass

    def close(self) -> None:
        pass


class Progress:
    """A rich progress bar with loss and tokens/s on a terminal; a plain line per eval otherwise."""

    def __init__(self, total_steps: int, start_step: int, enabled: bool, label: str):
        self.bar = None
        self.enabled = enabled
        if enabled and sys.stderr.isatty():
            from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn, TimeRemainingColumn

            self.bar = RichProgress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                    TextColumn("{task.fields[info]}"), TimeRemainingColumn(), transient=False)
            self.task = self.bar.add_task(label, total=total_steps, completed=start_step, info="")
            self.bar.start()

    def update(self, step: int, info: str) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=step, info=info)

    def note(self, text: str) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.console.print(text)
        else:
            print(text, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
