"""Pictures of the unsupervised models (issue 10): RBM filters, Gibbs samples, test digits beside
their autoencoder and PCA reconstructions, and the 2-D code scatter. Drawn like the rest of
:mod:`chainrule.report.plots` (Agg canvas, no pyplot; ``*_png`` returns bytes, ``plot_*`` writes
atomically)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from chainrule._io import atomic_write_text
from chainrule.report.html import render_figures_page
from chainrule.report.plots import PathArg, _figure, _png, _write

__all__ = [
    "codes_png",
    "image_grid_png",
    "plot_codes",
    "plot_image_grid",
    "plot_reconstructions",
    "reconstructions_png",
    "write_figures",
]


def _tile(images: np.ndarray, cols: int, side: int, pad: int = 1) -> np.ndarray:
    """``images`` (n, side²) as one (rows·(side+pad), cols·(side+pad)) mosaic, each image scaled to
    [0, 1] on its own (filters have arbitrary sign and scale)."""
    n = images.shape[0]
    rows = math.ceil(n / cols)
    out = np.ones((rows * (side + pad) + pad, cols * (side + pad) + pad))
    for i in range(n):
        im = images[i].reshape(side, side).astype(np.float64)
        lo, hi = float(im.min()), float(im.max())
        im = (im - lo) / (hi - lo) if hi > lo else np.zeros_like(im)
        r, c = divmod(i, cols)
        out[pad + r * (side + pad) : pad + r * (side + pad) + side, pad + c * (side + pad) : pad + c * (side + pad) + side] = im
    return out


def image_grid_png(images: np.ndarray, title: str, cols: int = 10) -> bytes:
    """A grid of square images (rows of ``images``: RBM filters ``Wᵀ`` or Gibbs samples)."""
    images = np.asarray(images)
    side = round(math.sqrt(images.shape[1]))
    if side * side != images.shape[1]:
        raise ValueError(f"rows of {images.shape[1]} values are not square images")
    mosaic = _tile(images, cols, side)
    fig = _figure(0.5 + cols * 0.6, 0.7 + mosaic.shape[0] / mosaic.shape[1] * cols * 0.6)
    ax = fig.add_subplot()
    ax.imshow(mosaic, cmap="gray", interpolation="nearest")
    ax.set_axis_off()
    ax.set_title(title, fontsize=9)
    return _png(fig)


def plot_image_grid(images: np.ndarray, path: PathArg, title: str, cols: int = 10) -> Path:
    return _write(path, image_grid_png(images, title, cols))


def reconstructions_png(rows: Sequence[tuple[str, np.ndarray]]) -> bytes:
    """One row per ``(label, images (n, 784))``: test digits, then each model's reconstructions."""
    n = rows[0][1].shape[0]
    side = round(math.sqrt(rows[0][1].shape[1]))
    fig = _figure(1.6 + n * 0.6, 0.3 + len(rows) * 0.65)
    axes = fig.subplots(len(rows), n, squeeze=False)
    for r, (label, imgs) in enumerate(rows):
        for c in range(n):
            ax = axes[r][c]
            ax.imshow(np.clip(imgs[c].reshape(side, side), 0, 1), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    return _png(fig)


def plot_reconstructions(rows: Sequence[tuple[str, np.ndarray]], path: PathArg) -> Path:
    return _write(path, reconstructions_png(rows))


def codes_png(codes: np.ndarray, labels: np.ndarray, title: str) -> bytes:
    """The 2-D codes of test digits, one colour per digit."""
    fig = _figure(6.0, 5.2)
    ax = fig.add_subplot()
    sc = ax.scatter(codes[:, 0], codes[:, 1], c=labels, cmap="tab10", s=3, alpha=0.7, vmin=-0.5, vmax=9.5)
    fig.colorbar(sc, ax=ax, ticks=range(10), label="digit")
    ax.set_xlabel("code unit 1")
    ax.set_ylabel("code unit 2")
    ax.set_title(title, fontsize=9)
    return _png(fig)


def plot_codes(codes: np.ndarray, labels: np.ndarray, path: PathArg, title: str) -> Path:
    return _write(path, codes_png(codes, labels, title))


def write_figures(out_dir: PathArg, title: str, rows: list[tuple[str, str]],
                  figures: list[tuple[str, bytes, str]]) -> list[Path]:
    """Write each ``(file name, png, caption)`` into ``out_dir`` and ``report.html`` showing them all
    beside the key/value ``rows``; returns the paths written."""
    out = Path(out_dir)
    written = [_write(out / name, png) for name, png, _ in figures]
    page = out / "report.html"
    atomic_write_text(page, render_figures_page(title, rows, [(png, cap) for _, png, cap in figures]))
    return [*written, page]
