"""House style for figures: colour-blind-safe colours, labelled units, PNG + SVG output.

Figures are built on `matplotlib.figure.Figure` directly (Agg canvas), never through pyplot, so
plotting changes no global backend or state in a process that also trains models.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

# Okabe & Ito (2008): distinguishable under the common colour-vision deficiencies.
OKABE_ITO = {
    "black": "#000000", "orange": "#E69F00", "sky": "#56B4E9", "green": "#009E73",
    "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "purple": "#CC79A7",
}
CYCLE = [OKABE_ITO[k] for k in ("blue", "vermillion", "green", "orange", "purple", "sky", "black")]
SEQUENTIAL = "viridis"  # for quantities (N, budget): perceptually uniform, colour-blind safe
GREY = "#9a9a9a"

LABELS = {
    "N": "parameters N",
    "D": "training tokens D",
    "C": "training compute C (FLOPs)",
    "loss": "loss (nats/token)",
    "accuracy": "accuracy (pass@1)",
    "rl_flops": "RL compute (FLOPs)",
}


def n_label(pts) -> str:
    """The N axis label, saying which N where a sweep's design N (non-embedding, active) was fitted."""
    column = pts.labels.get("N") if pts is not None else None
    return "active non-embedding parameters N" if column == "n_params_active_nonembedding" else LABELS["N"]


RC = {
    "font.size": 10, "axes.titlesize": 11, "axes.labelsize": 10, "legend.fontsize": 8.5,
    "axes.grid": True, "grid.alpha": 0.25, "grid.linewidth": 0.6, "axes.spines.top": False,
    "axes.spines.right": False, "axes.prop_cycle": matplotlib.cycler(color=CYCLE),
    "savefig.dpi": 150, "svg.fonttype": "none",
}


def new_figure(n_cols: int = 1, n_rows: int = 1, width: float = 6.4, height: float = 4.6) -> tuple[Figure, list]:
    """A figure with a grid of axes, drawn in the house style."""
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(width * n_cols, height * n_rows), layout="constrained")
        FigureCanvasAgg(fig)
        axes = [fig.add_subplot(n_rows, n_cols, i + 1) for i in range(n_rows * n_cols)]
    return fig, axes


def styled(fn):
    """Run a drawing function under the house rc settings (tick and grid styles apply at draw time)."""

    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(RC):
            return fn(*args, **kwargs)

    wrapper.__name__, wrapper.__doc__ = fn.__name__, fn.__doc__
    return wrapper


def save(fig: Figure, out_dir: Path, name: str) -> list[Path]:
    """Write NAME.png and NAME.svg; returns both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.png", out_dir / f"{name}.svg"]
    with matplotlib.rc_context(RC):
        fig.savefig(paths[0])  # constrained layout fits the labels on this first draw...
        fig.set_layout_engine("none")  # ...and is not worth solving again for the SVG
        fig.savefig(paths[1])
    return paths


def short_source(source: str) -> str:
    """The last two path components: enough to say what data, short enough for a title."""
    parts = Path(source).parts
    return "/".join(parts[-2:]) if len(parts) > 1 else source
