"""Shared by the benchmarks: the environment line and replacing one `## ` section of BENCHMARKS.md."""
from __future__ import annotations

import datetime
import os
import platform
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def environment() -> str:
    """Date, device, versions, CPU and the load average now: what a reader needs to compare numbers."""
    import jax

    from scaling.train.metrics import device_description

    return (f"{datetime.date.today()}, {device_description()}, jax {jax.__version__}, Python "
            f"{platform.python_version()}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPU "
            f"cores, load average {os.getloadavg()[0]:.1f} when measured")


def write_section(header: str, lines: list[str]) -> None:
    """Replace the section starting with `header` (up to the next `## `) in BENCHMARKS.md, or append it."""
    path = ROOT / "BENCHMARKS.md"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    section = "\n".join([header, "", *lines]) + "\n"
    pattern = re.compile(rf"^{re.escape(header)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(lambda _: section + "\n", text) if pattern.search(text) else text.rstrip() + "\n\n" + section
    path.write_text(text)
