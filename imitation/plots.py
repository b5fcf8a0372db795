"""Histogram PNGs for balancing and dataset reports (matplotlib, no display needed).

Figures are drawn on matplotlib's Agg canvas directly, so importing this module never changes the
global backend of a program that also shows windows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

Histogram = tuple[Sequence[str], np.ndarray]
"""Bin labels and the count in each bin."""


def save_histograms(
    path: str | Path,
    histograms: Mapping[str, Histogram],
    *,
    title: str,
    color: str = "tab:blue",
) -> Path:
    """Draw one bar chart per output (stacked vertically) into a PNG.

    Args:
        path: Where to write the PNG (parent directories are created).
        histograms: Output name -> (bin labels, counts).
        title: Figure title.
        color: Bar colour.

    Returns:
        The path written.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = max(1, len(histograms))
    widest = max((len(labels) for labels, _ in histograms.values()), default=1)
    height = 2.6 * n + 0.8
    fig = Figure(figsize=(max(6.0, 0.45 * widest + 2), height))
    # Fixed margins: constrained layout costs about a second per figure.
    fig.subplots_adjust(
        left=0.08, right=0.98, top=1 - 0.5 / height, bottom=0.9 / height, hspace=1.0
    )
    FigureCanvasAgg(fig)
    axes = fig.subplots(n, 1, squeeze=False)[:, 0]
    for ax, (name, (labels, counts)) in zip(axes, histograms.items(), strict=False):
        counts = np.asarray(counts)
        x = np.arange(len(labels))
        ax.bar(x, counts, color=color)
        ax.set_xticks(x, list(labels), rotation=60, ha="right", fontsize=7)
        ax.set_ylabel("samples")
        ax.set_title(f"{name} ({int(counts.sum())} samples)", fontsize=9)
    fig.suptitle(title)
    fig.savefig(path, dpi=100)
    return path


def save_value_histograms(
    path: str | Path,
    values: Mapping[str, np.ndarray],
    *,
    title: str,
    bins: int = 41,
    value_range: tuple[float, float] = (-1.0, 1.0),
) -> Path:
    """Histograms of raw values (e.g. the action columns of a dataset) into one PNG.

    Args:
        path: Where to write the PNG.
        values: Name -> 1-D array of values.
        title: Figure title.
        bins: Equal-width bins over ``value_range``.
        value_range: The range binned.

    Returns:
        The path written.
    """
    edges = np.linspace(value_range[0], value_range[1], bins + 1)
    hists = {}
    for name, v in values.items():
        counts, _ = np.histogram(np.asarray(v, dtype=np.float64), bins=edges)
        labels = [f"{lo:+.2f}" for lo in edges[:-1]]
        hists[name] = (labels, counts)
    return save_histograms(path, hists, title=title)
