"""PNG figures: training curves, gradient-flow heatmaps, confusion matrices, the vanishing study.

matplotlib is optional (``pip install 'chainrule[plot]'``) and imported only when a figure is
drawn; without it every function raises :class:`~chainrule.errors.MissingDependencyError`. Figures
are built with :class:`matplotlib.figure.Figure` and the Agg canvas directly, never through
``pyplot``, so drawing one changes no global state (no backend switch in a user's session, no
figure left open). Each ``plot_*`` renders the PNG into memory and writes it with
:func:`~chainrule._io.atomic_write_bytes`, so a reader never sees half a file; each ``*_png``
twin returns the bytes (the HTML report embeds them).
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from chainrule._io import atomic_write_bytes
from chainrule.errors import DataError, MissingDependencyError
from chainrule.nn.functional import sigmoid
from chainrule.nn.layers import Sigmoid
from chainrule.train.flow import GradientFlow

__all__ = [
    "confusion_png",
    "flow_png",
    "history_png",
    "plot_confusion",
    "plot_flow",
    "plot_history",
    "plot_vanishing",
]

PathArg = str | os.PathLike[str]
DPI = 100

# -- plumbing ---------------------------------------------------------------------------------------


def _figure(width: float, height: float) -> Any:
    """A fresh Agg-backed :class:`~matplotlib.figure.Figure` (no pyplot, no global state)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # optional: plot extra, to draw
        from matplotlib.figure import Figure  # optional: plot extra, to draw
    except ImportError as exc:
        raise MissingDependencyError("matplotlib", "plots", "plot") from exc
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def _write(path: PathArg, data: bytes) -> Path:
    target = Path(path)
    atomic_write_bytes(target, data)
    return target


# -- training curves --------------------------------------------------------------------------------


def _epochs(history: Any) -> list[dict[str, Any]]:
    """The per-epoch dicts of a :class:`~chainrule.train.loop.History`, its ``to_dict()``, or a list."""
    if hasattr(history, "epochs") and not isinstance(history, dict):
        epochs = history.epochs
    elif isinstance(history, dict):
        epochs = history.get("epochs")
    else:
        epochs = history
    if not isinstance(epochs, list) or not all(isinstance(e, dict) for e in epochs):
        raise DataError("a training history must have a list of per-epoch records")
    if not epochs:
        raise DataError("the training history is empty: nothing to plot")
    return epochs


def _column(epochs: list[dict[str, Any]], key: str) -> tuple[np.ndarray, np.ndarray] | None:
    xs, ys = [], []
    for i, e in enumerate(epochs, start=1):
        v = e.get(key)
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v):
            xs.append(e.get("epoch", i))
            ys.append(float(v))
    return (np.asarray(xs, dtype=float), np.asarray(ys)) if ys else None


def history_png(history: Any, title: str | None = None) -> bytes:
    """Training curves as PNG bytes: loss (left) and accuracy (right), training and validation."""
    epochs = _epochs(history)
    fig = _figure(8.0, 3.2)
    ax_loss, ax_acc = fig.subplots(1, 2)
    marker = "o" if len(epochs) <= 30 else None
    for ax, key, label in ((ax_loss, "loss", "loss"), (ax_acc, "accuracy", "accuracy")):
        for prefix, name, style in (("", "training", "-"), ("val_", "validation", "--")):
            col = _column(epochs, prefix + key)
            if col is not None:
                ax.plot(*col, style, marker=marker, markersize=3.5, label=name)
        ax.set_xlabel("epoch")
        ax.set_title(label)
        ax.grid(True, alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
    ax_acc.yaxis.set_major_formatter(_percent())
    if title:
        fig.suptitle(title)
    return _png(fig)


def plot_history(history: Any, path: PathArg, title: str | None = None) -> Path:
    """Write training curves (loss and accuracy, with validation when present) as a PNG.

    ``history`` is the :class:`~chainrule.train.loop.History` returned by :func:`~chainrule.train.loop.fit`
    (or its ``to_dict()``). Returns the path written.
    """
    return _write(path, history_png(history, title))


def _log_ticks(ax: Any, which: str = "xy") -> None:
    """Readable log-axis labels: plain numbers at 1, 2, 5 × 10^k, or only at powers of ten when
    the axis spans more than two and a half decades."""
    from matplotlib.ticker import FuncFormatter, LogLocator  # optional: plot extra, to draw

    def labeller(axis: Any) -> Any:
        def label(v: float, _pos: int) -> str:
            if v <= 0:
                return ""
            lo, hi = sorted(axis.get_view_interval())
            wide = lo > 0 and math.log10(hi / lo) > 2.5
            mant = v / 10 ** math.floor(math.log10(v) + 1e-9)
            keep = (1,) if wide else (1, 2, 5)
            if min(abs(mant - m) for m in keep) > 1e-6:
                return ""
            return f"{v:g}"

        return FuncFormatter(label)

    for name in which:
        axis = ax.xaxis if name == "x" else ax.yaxis
        axis.set_major_formatter(labeller(axis))
        axis.set_minor_locator(LogLocator(base=10, subs=(2.0, 5.0)))
        axis.set_minor_formatter(labeller(axis))


def _percent() -> Any:
    from matplotlib.ticker import FuncFormatter  # optional: plot extra, to draw

    return FuncFormatter(lambda v, _pos: f"{100 * v:.0f}%" if v >= 0.1 else f"{100 * v:.1f}%")


# -- gradient flow ----------------------------------------------------------------------------------


def _as_flow(flow: Any) -> Any:
    if isinstance(flow, GradientFlow):
        return flow
    return GradientFlow.from_dict(flow)


def _edges(steps: np.ndarray) -> np.ndarray:
    """Cell edges for ``pcolormesh``: a record at step ``s`` covers ``[s, next recorded step)``
    (the last one as wide as the one before it)."""
    s = steps.astype(float)
    if len(s) == 1:
        return np.array([s[0], s[0] + 1.0])
    return np.concatenate([s, [s[-1] + (s[-1] - s[-2])]])


def flow_png(flow: Any, title: str | None = None) -> bytes:
    """Gradient-flow heatmaps as PNG bytes: ``‖δ^l‖`` and ``‖ΔW^l‖/‖W^l‖`` (log colour scales),
    layers down (layer 1, nearest the input, on top), recorded steps across. NaN/Inf cells are
    black, zero or missing ones light grey; cells that raised a warning carry a marker."""
    from matplotlib.colors import LogNorm  # optional: plot extra, to draw

    flow = _as_flow(flow)
    steps = flow.steps
    if len(steps) == 0:
        raise DataError("the gradient-flow record is empty: nothing to plot")
    n_layers = len(flow.layers)
    panel = max(1.5, 0.3 * n_layers + 0.7)
    fig = _figure(8.0, 2 * panel + 0.6)
    axes = fig.subplots(2, 1, sharex=True)
    panels = (
        ("delta_norm", "‖δˡ‖ = ‖∂E/∂zˡ‖ on the probe batch", "viridis"),
        ("update_ratio", "‖ΔWˡ‖ / ‖Wˡ‖ of one optimiser step", "magma"),
    )
    x_edges = _edges(steps)
    y_edges = np.arange(n_layers + 1) - 0.5
    import matplotlib  # optional: plot extra, to draw
    import matplotlib.colors  # optional: plot extra, to draw

    for ax, (metric, label, cmap_name) in zip(axes, panels, strict=True):
        data = flow.series(metric).T  # (L, T)
        positive = np.isfinite(data) & (data > 0)
        ax.set_facecolor("0.85")  # zero or no value (the update ratio at step 0): light grey
        if positive.any():
            lo, hi = float(data[positive].min()), float(data[positive].max())
            if hi <= lo:
                lo, hi = lo / 10, hi * 10
            cmap = matplotlib.colormaps[cmap_name].with_extremes(bad=(0, 0, 0, 0))
            mesh = ax.pcolormesh(
                x_edges,
                y_edges,
                np.ma.masked_where(~positive, data),
                cmap=cmap,
                norm=LogNorm(vmin=lo, vmax=hi),
                shading="flat",
            )
            fig.colorbar(mesh, ax=ax, pad=0.01)
        nonfinite = ~np.isfinite(data)
        if metric == "update_ratio":
            nonfinite[:, 0] = False  # step 0 has no previous step: no value, not an error
        if nonfinite.any():  # NaN / Inf: black
            label += "  (black: NaN/Inf)"
            ax.pcolormesh(
                x_edges,
                y_edges,
                np.ma.masked_where(~nonfinite, np.ones_like(data)),
                cmap=matplotlib.colors.ListedColormap(["black"]),
                shading="flat",
            )
        ax.set_yticks(np.arange(n_layers), flow.layers)
        ax.set_ylim(n_layers - 0.5, -0.5)  # layer 1 (the input side) at the top
        ax.set_ylabel("layer")
        ax.set_title(label, fontsize="medium", loc="left")
    _mark_warnings(axes[0], flow, x_edges)
    axes[-1].set_xlabel("training step")
    if title:
        fig.suptitle(title)
    return _png(fig)


def _mark_warnings(ax: Any, flow: Any, x_edges: np.ndarray) -> None:
    rows = {name: j for j, name in enumerate(flow.layers)}
    centre = {int(st): (x_edges[i] + x_edges[i + 1]) / 2 for i, st in enumerate(flow.steps)}
    styles = {"vanishing": ("v", "white"), "exploding": ("^", "red"), "nonfinite": ("x", "red")}
    seen = set()
    for w in flow.warnings:
        j = rows.get(w.get("layer"))
        kind = w.get("kind")
        if j is None or kind not in styles or not isinstance(w.get("step"), int):
            continue
        m, c = styles[kind]
        ax.plot(
            centre.get(w["step"], w["step"]),
            j,
            linestyle="none",
            marker=m,
            color=c,
            markeredgecolor=c if m == "x" else "black",
            markeredgewidth=1.5 if m == "x" else 1.0,
            markersize=6,
            label=kind if kind not in seen else None,
        )
        seen.add(kind)
    if seen:
        ax.legend(
            loc="upper right", fontsize="x-small", framealpha=0.8, title="flagged", title_fontsize="x-small"
        )


def plot_flow(flow: Any, path: PathArg, title: str | None = None) -> Path:
    """Write the gradient-flow heatmaps of a :class:`~chainrule.train.flow.GradientFlow` (or its
    ``to_dict()``) as a PNG; returns the path."""
    return _write(path, flow_png(flow, title))


# -- confusion matrix -------------------------------------------------------------------------------


def _as_confusion(confusion: Any) -> np.ndarray:
    try:
        c = np.asarray(confusion, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError("a confusion matrix must be a square table of counts") from None
    if c.ndim != 2 or c.shape[0] != c.shape[1] or c.shape[0] < 1:
        raise DataError(f"a confusion matrix must be square, got shape {c.shape}")
    if not np.all(np.isfinite(c)) or np.any(c < 0) or np.any(c != np.round(c)):
        raise DataError("a confusion matrix must hold non-negative integer counts")
    return c.astype(np.int64)


def confusion_png(
    confusion: Any, class_names: Sequence[str] | None = None, title: str | None = None
) -> bytes:
    """A confusion matrix as PNG bytes: rows are true classes, columns predictions; the colour is
    the fraction of the row (recall), the number the count."""
    c = _as_confusion(confusion)
    k = c.shape[0]
    names = [str(n) for n in class_names] if class_names is not None else [str(i) for i in range(k)]
    if len(names) != k:
        raise DataError(f"{len(names)} class names for a {k}×{k} confusion matrix")
    rows = c.sum(axis=1, keepdims=True)
    frac = np.divide(c, rows, out=np.zeros(c.shape), where=rows > 0)
    side = min(8.0, max(3.4, 0.42 * k + 1.4))
    fig = _figure(side + 0.9, side)
    ax = fig.subplots()
    im = ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(im, ax=ax, label="fraction of true class", shrink=0.85)
    if k <= 20:
        size = "small" if k <= 12 else "x-small"
        for i in range(k):
            for j in range(k):
                if c[i, j]:
                    color = "white" if frac[i, j] > 0.5 else "black"
                    ax.text(j, i, str(c[i, j]), ha="center", va="center", color=color, fontsize=size)
    ticks = np.arange(k)
    ax.set_xticks(ticks, names, fontsize="small")
    ax.set_yticks(ticks, names, fontsize="small")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    total = int(c.sum())
    acc = float(np.trace(c)) / total if total else float("nan")
    ax.set_title(title or f"accuracy {100 * acc:.2f}% ({int(np.trace(c))}/{total})")
    return _png(fig)


def plot_confusion(
    confusion: Any, path: PathArg, class_names: Sequence[str] | None = None, title: str | None = None
) -> Path:
    """Write a confusion matrix (``K×K`` counts, rows true, columns predicted) as a PNG."""
    return _write(path, confusion_png(confusion, class_names, title))


# -- the vanishing-gradient study --------------------------------------------------------------------

_ACT_COLORS = {"sigmoid": "tab:blue", "tanh": "tab:orange", "relu": "tab:green", "identity": "tab:red"}
_INIT_COLORS = {"normal": "tab:red", "xavier": "tab:blue", "he": "tab:green", "lecun": "tab:purple"}
_DEPTH_STYLES = ["-", "--", ":", "-."]


def plot_vanishing(result: Any, out_dir: PathArg) -> list[Path]:
    """Write the figures of a :class:`~chainrule.studies.vanishing.StudyResult` into ``out_dir``:

    * ``vanishing_layers.png``: ``‖∂E/∂b^l‖`` against hidden layer, at initialisation (top) and
      after training (bottom), one panel per activation, one line per initialiser and depth;
    * ``vanishing_training.png``: ``‖∂E/∂b^l‖`` of each layer against training step for four nets;
    * ``vanishing_ratios.png``: the first/last hidden-layer ratio of every net (log scale);
    * ``sigmoid_bound.png``: ``σ'(z) ≤ 1/4`` and the measured per-layer ratio of the sigmoid nets
      against its bound ``‖W‖₂·max σ'``.

    Returns the paths written.
    """
    out = Path(out_dir)
    if not out.is_dir():
        raise FileNotFoundError(2, "output directory does not exist", str(out))
    figures = {
        "vanishing_layers.png": _vanishing_layers(result),
        "vanishing_training.png": _vanishing_training(result),
        "vanishing_ratios.png": _vanishing_ratios(result),
        "sigmoid_bound.png": _sigmoid_bound(result),
    }
    return [_write(out / name, data) for name, data in figures.items()]


def _activations(result: Any) -> list[str]:
    seen: list[str] = []
    for r in result.runs:
        if r.config.activation not in seen:
            seen.append(r.config.activation)
    return seen


def _act_label(act: str) -> str:
    return "linear (identity)" if act == "identity" else act


def _vanishing_layers(result: Any) -> bytes:
    acts = _activations(result)
    depths = sorted({r.config.depth for r in result.runs})
    fig = _figure(3.0 * len(acts) + 0.4, 6.0)
    axes = np.atleast_2d(fig.subplots(2, len(acts), sharey="row", squeeze=False))
    for col, act in enumerate(acts):
        for row, (t, when) in enumerate(((0, "at initialisation"), (-1, "after training"))):
            ax = axes[row, col]
            for r in result.runs:
                if r.config.activation != act:
                    continue
                h = r.hidden_norms(t)
                ok = np.isfinite(h) & (h > 0)
                if t == -1 and r.diverged_at is not None:
                    continue
                if not ok.any():
                    continue
                layers = np.arange(1, len(h) + 1)
                ax.semilogy(
                    layers[ok],
                    h[ok],
                    _DEPTH_STYLES[depths.index(r.config.depth) % len(_DEPTH_STYLES)],
                    marker="o",
                    markersize=3,
                    color=_INIT_COLORS.get(r.config.init, "gray"),
                    label=f"{r.config.init} ({r.config.depth} layers)",
                )
            diverged = [r for r in result.runs if r.config.activation == act and r.diverged_at is not None]
            if t == -1 and diverged:
                ax.text(
                    0.03,
                    0.04,
                    "NaN (diverged): " + ", ".join(f"{r.config.init} ({r.config.depth})" for r in diverged),
                    transform=ax.transAxes,
                    fontsize="x-small",
                    color="darkred",
                )
            ax.set_xlim(0.7, max(depths) + 0.3)
            ax.set_title(f"{_act_label(act)}, {when}", fontsize="medium")
            ax.grid(True, which="major", alpha=0.3)
            ax.xaxis.get_major_locator().set_params(integer=True)
            if row == 1:
                ax.set_xlabel("hidden layer (1 = nearest the input)")
            if col == 0:
                ax.set_ylabel("‖∂E/∂bˡ‖")
    handles, labels = [], []
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="outside lower center", ncol=min(6, len(labels)), fontsize="small")
    steps = result.settings.get("steps")
    fig.suptitle(
        f"Per-layer gradient ‖∂E/∂bˡ‖ on a {result.settings.get('probe_size')}-image probe batch "
        f"(SGD, {steps} steps of {result.settings.get('batch_size')})",
        fontsize="medium",
    )
    return _png(fig)


def _pick_training_runs(result: Any) -> list[Any]:
    deepest = max(r.config.depth for r in result.runs)
    wanted = ["sigmoid/normal", "sigmoid/xavier", "tanh/normal", "tanh/xavier", "relu/normal", "relu/he"]
    picked = []
    for w in wanted:
        for r in result.runs:
            if r.config.name.startswith(w + " ") and r.config.depth == deepest:
                picked.append(r)
                break
    return picked or result.runs[:6]


def _vanishing_training(result: Any) -> bytes:
    import matplotlib  # optional: plot extra, to draw

    runs = _pick_training_runs(result)
    n = len(runs)
    cols = 2 if n > 1 else 1
    rows = math.ceil(n / cols)
    fig = _figure(4.2 * cols + 1.0, 2.7 * rows + 0.4)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False).ravel())
    cmap = matplotlib.colormaps["viridis"]
    for ax, r in zip(axes, runs, strict=False):
        b = r.flow.bias_grad_norm
        steps = r.flow.steps
        n_l = b.shape[1]
        for j in range(n_l):
            y = b[:, j]
            ok = np.isfinite(y) & (y > 0)
            if not ok.any():
                continue
            last = j == n_l - 1
            ax.semilogy(
                steps[ok],
                y[ok],
                color="black" if last else cmap(j / max(1, n_l - 2)),
                linestyle=":" if last else "-",
                marker="o" if ok.sum() < 5 else None,
                markersize=3,
                linewidth=1.2,
                label="output" if last else f"hidden {j + 1}",
            )
        title = r.config.name
        if r.diverged_at is not None:
            title += f" — NaN by step {r.diverged_at}"
            ax.axvline(r.diverged_at, color="darkred", linewidth=0.8)
        ax.set_title(title, fontsize="medium")
        ax.set_xlabel("training step")
        ax.set_ylabel("‖∂E/∂bˡ‖")
        ax.grid(True, alpha=0.3)
        _log_ticks(ax, "y")
    for ax in axes[n:]:
        ax.set_visible(False)
    if runs:
        h, lab = axes[0].get_legend_handles_labels()
        fig.legend(h, lab, loc="outside right center", fontsize="small")
    fig.suptitle("Gradient of each layer during training (layer 1 darkest)", fontsize="medium")
    return _png(fig)


def _vanishing_ratios(result: Any) -> bytes:
    runs = list(result.runs)
    n = len(runs)
    fig = _figure(7.5, 0.28 * n + 1.6)
    ax = fig.subplots()
    y = np.arange(n)
    init = [r.ratio_init for r in runs]
    trained = [r.ratio_trained for r in runs]
    ax.axvspan(0.1, 10, color="tab:green", alpha=0.08, label="within 10× (0.1 … 10)")
    ax.axvline(1.0, color="gray", linewidth=0.8)
    vi = [(i, v) for i, v in enumerate(init) if v is not None and v > 0]
    vt = [(i, v) for i, v in enumerate(trained) if v is not None and v > 0]
    if vi:
        ax.scatter(
            [v for _, v in vi], [i for i, _ in vi], marker="o", color="tab:blue", label="at init", zorder=3
        )
    if vt:
        ax.scatter(
            [v for _, v in vt],
            [i for i, _ in vt],
            marker="s",
            facecolor="none",
            edgecolor="tab:orange",
            label="after training",
            zorder=3,
        )
    for i, r in enumerate(runs):
        if r.diverged_at is not None:
            at = r.ratio_init if r.ratio_init is not None and r.ratio_init > 0 else 1.0
            ax.annotate(
                f"NaN by step {r.diverged_at}",
                (at, i),
                xytext=(-9, 0),
                textcoords="offset points",
                ha="right",
                va="center",
                fontsize="x-small",
                color="darkred",
            )
    for i in range(1, n):
        if runs[i].config.depth != runs[i - 1].config.depth:
            ax.axhline(i - 0.5, color="gray", linewidth=0.6)
    ax.set_xscale("log")
    ax.set_yticks(y, [r.config.name for r in runs], fontsize="small")
    ax.set_ylim(n - 0.5, -0.5)
    ax.set_xlabel("‖∂E/∂b¹‖ / ‖∂E/∂bᴴ‖  (first hidden layer / last hidden layer)")
    ax.grid(True, axis="x", which="major", alpha=0.3)
    ax.legend(loc="lower left", fontsize="x-small")
    ax.set_title("< 1: the gradient vanishes towards the input;  > 1: it explodes", fontsize="medium")
    return _png(fig)


def _sigmoid_bound(result: Any) -> bytes:
    fig = _figure(9.0, 3.6)
    ax_s, ax_b = fig.subplots(1, 2)
    z = np.linspace(-8, 8, 801)
    ax_s.plot(z, Sigmoid().fprime(z, sigmoid(z)), color="tab:blue", label="σ'(z) = σ(z)(1 − σ(z))")
    ax_s.axhline(0.25, color="tab:red", linestyle="--", label="1/4 = σ'(0)")
    ax_s.set_xlabel("z")
    ax_s.set_title("the sigmoid's slope never exceeds 1/4", fontsize="medium")
    ax_s.legend(fontsize="small", loc="upper left")
    ax_s.set_ylim(0, 0.3)
    ax_s.grid(True, alpha=0.3)
    pts = [(r, h) for r in result.runs for h in r.bound]
    if pts:
        inits = sorted({r.config.init for r, _ in pts})
        for init in inits:
            sel = [(h["bound"], h["ratio"]) for r, h in pts if r.config.init == init]
            ax_b.scatter(
                *zip(*sel, strict=True), s=16, color=_INIT_COLORS.get(init, "gray"), label=f"sigmoid/{init}"
            )
        lo = min(min(h["ratio"], h["bound"]) for _, h in pts) / 1.5
        hi = max(max(h["ratio"], h["bound"]) for _, h in pts) * 1.5
        ax_b.plot([lo, hi], [lo, hi], color="black", linewidth=0.8, label="ratio = bound")
        ax_b.fill_between([lo, hi], [lo, hi], [hi, hi], color="tab:red", alpha=0.07)
        ax_b.set_xscale("log")
        ax_b.set_yscale("log")
        ax_b.set_xlim(lo, hi)
        ax_b.set_ylim(lo, hi)
        ax_b.set_aspect("equal")
        _log_ticks(ax_b)
        ax_b.legend(fontsize="x-small", loc="upper left")
    else:
        ax_b.text(0.5, 0.5, "no sigmoid nets in this study", transform=ax_b.transAxes, ha="center")
    ax_b.set_xlabel("bound ‖Wˡ⁺¹‖₂ · max σ'(zˡ)   (≤ ‖Wˡ⁺¹‖₂ / 4)")
    ax_b.set_ylabel("measured ‖δˡ‖ / ‖δˡ⁺¹‖")
    ax_b.set_title("each hop back, at initialisation (shaded: impossible)", fontsize="medium")
    ax_b.grid(True, which="major", alpha=0.3)
    return _png(fig)
