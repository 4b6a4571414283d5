"""Figures and reports for scaling-law fits (matplotlib, Agg canvas, no pyplot).

`scaling.plots.figures` holds one function per panel (`plot_isoflop(ax, fit, pts)`, ...) for reuse
in other reports; `scaling.plots.report.make_report` fits what the data supports and writes every
figure as PNG + SVG with a report.md; `scaling.plots.analysis` reads `analysis/*.yaml` files.
"""
from scaling.plots.analysis import Analysis, load_analysis
from scaling.plots.report import ALL_FIGURES, Report, make_report

__all__ = ["ALL_FIGURES", "Analysis", "Report", "load_analysis", "make_report"]
