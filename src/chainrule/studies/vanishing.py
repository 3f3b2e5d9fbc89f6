"""The vanishing-gradient experiment of seed 004 and Nielsen's chapter 5, measured.

Seed 004 ends on BP2 (column form)::

    δ^l = ((W^{l+1})ᵀ δ^{l+1}) ⊙ σ'(z^l),        ∂E/∂b^l = δ^l,        ∂E/∂w^l_{jk} = a^{l-1}_k δ^l_j

and observes that ``∂E/∂w`` is proportional to ``σ'(z)``, which for a sigmoid decays exponentially
as ``|z|`` grows: a deep sigmoid network learns slowly in its first layers. Going back one hidden
layer multiplies δ by a weight matrix and by ``σ'``, so (row form, Frobenius norms over a batch)::

    ‖δ^l‖ ≤ ‖W^{l+1}‖₂ · max σ'(z^l) · ‖δ^{l+1}‖ ≤ ‖W^{l+1}‖₂ / 4 · ‖δ^{l+1}‖

because ``σ'(z) = σ(z)(1 − σ(z)) ≤ 1/4`` (equality at ``z = 0``). Unless the weights are large
the per-layer factor is below one and δ shrinks geometrically towards the input; with large weights
and a non-saturating activation (ReLU, or none) it grows geometrically instead.

:func:`run_study` trains deep fully connected nets (5 and 10 hidden layers of width 30 by default)
with sigmoid, tanh and ReLU, each with N(0, 1) ("normal", Nielsen's chapter-1 default), Xavier and He
initialisation, plus a linear net with N(0, 1) weights (the exploding case), for a few hundred SGD
steps. A :class:`~chainrule.train.flow.GradientFlow` callback records ``‖∂E/∂b^l‖`` of every layer on a
fixed probe batch at initialisation and during training, and the study reports the ratio of the
first hidden layer's gradient to the last hidden layer's (Nielsen's measure) and checks the bound
above hop by hop for the sigmoid nets.
"""

from __future__ import annotations

import itertools
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chainrule.errors import ConfigError
from chainrule.inspect.trace import trace
from chainrule.io import load_default
from chainrule.nn.builders import mlp
from chainrule.nn.functional import sigmoid
from chainrule.nn.layers import Sigmoid
from chainrule.train import TrainingDiverged, evaluate, fit
from chainrule.train.flow import GradientFlow

__all__ = [
    "StudyConfig",
    "StudyResult",
    "StudyRun",
    "default_configs",
    "run_study",
    "sigmoid_bound",
    "sigmoid_prime_max",
]

#: (activation, init, init_scale) of the standard grid: every activation with every initialiser,
#: plus a linear net with N(0, 1) weights, where nothing saturates and the gradient explodes.
GRID: tuple[tuple[str, str, float], ...] = (
    ("sigmoid", "normal", 1.0),
    ("sigmoid", "xavier", 1.0),
    ("sigmoid", "he", 1.0),
    ("tanh", "normal", 1.0),
    ("tanh", "xavier", 1.0),
    ("tanh", "he", 1.0),
    ("relu", "normal", 1.0),
    ("relu", "xavier", 1.0),
    ("relu", "he", 1.0),
    ("identity", "normal", 1.0),
)


@dataclass(frozen=True)
class StudyConfig:
    """One network of the study: ``depth`` hidden layers of ``width`` units."""

    activation: str
    init: str
    depth: int
    width: int = 30
    init_scale: float = 1.0

    @property
    def name(self) -> str:
        scale = "" if self.init_scale == 1.0 else f"×{self.init_scale:g}"
        act = "linear" if self.activation == "identity" else self.activation
        return f"{act}/{self.init}{scale} {self.depth}×{self.width}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "activation": self.activation,
            "init": self.init,
            "init_scale": self.init_scale,
            "depth": self.depth,
            "width": self.width,
            "name": self.name,
        }


def default_configs(depths: Sequence[int] = (5, 10), width: int = 30) -> list[StudyConfig]:
    """The grid :data:`GRID` at each depth."""
    return [StudyConfig(a, i, int(d), int(width), s) for d in depths for a, i, s in GRID]


@dataclass
class StudyRun:
    """The result of one configuration: its gradient-flow record and what training did.

    ``flow.bias_grad_norm[t, l]`` is ``‖∂E/∂b^l‖`` on the probe batch at step ``flow.steps[t]``;
    the last column is the output layer, the others the hidden layers. ``diverged_at`` is the
    first recorded step whose probe saw a NaN/Inf loss or gradient (training blew up before it).
    """

    config: StudyConfig
    flow: GradientFlow
    steps: int
    seconds: float
    diverged_at: int | None = None
    test_accuracy: float | None = None
    final_loss: float | None = None
    bound: list[dict[str, float]] = field(default_factory=list)

    def hidden_norms(self, t: int = 0) -> np.ndarray:
        """``‖∂E/∂b^l‖`` of the hidden layers (first to last) at record ``t`` (0 = initialisation)."""
        return self.flow.bias_grad_norm[t, : self.config.depth]

    def ratio(self, t: int = 0) -> float | None:
        """First-to-last hidden layer ratio ``‖∂E/∂b^1‖ / ‖∂E/∂b^H‖`` at record ``t`` (None if not
        finite or undefined, e.g. after divergence or with every ReLU dead)."""
        h = self.hidden_norms(t)
        first, last = float(h[0]), float(h[-1])
        if not (math.isfinite(first) and math.isfinite(last)) or last == 0:
            return None
        return first / last

    @property
    def ratio_init(self) -> float | None:
        return self.ratio(0)

    @property
    def ratio_trained(self) -> float | None:
        """The ratio at the last recorded step (None if training diverged)."""
        return None if self.diverged_at is not None else self.ratio(-1)

    def to_dict(self, series: bool = False) -> dict[str, Any]:
        d: dict[str, Any] = {
            "config": self.config.to_dict(),
            "steps": self.steps,
            "seconds": self.seconds,
            "ratio_init": self.ratio_init,
            "ratio_trained": self.ratio_trained,
            "diverged_at": self.diverged_at,
            "test_accuracy": self.test_accuracy,
            "final_loss": self.final_loss,
            "hidden_bias_grad_norm_init": _finite_list(self.hidden_norms(0)),
            "hidden_bias_grad_norm_trained": _finite_list(self.hidden_norms(-1)),
            "warnings": sorted({w["kind"] for w in self.flow.warnings}),
            "bound": self.bound,
        }
        if series:
            d["gradient_flow"] = self.flow.to_dict()
        return d


@dataclass
class StudyResult:
    """All runs of :func:`run_study` and the settings they shared.

    ``table`` is the terminal table, ``to_dict()`` the JSON form; ``run(name)`` finds a run by
    :attr:`StudyConfig.name` prefix (``result.run("sigmoid/normal 5")``).
    """

    runs: list[StudyRun]
    settings: dict[str, Any]
    sigmoid_prime: dict[str, float]

    def run(self, prefix: str) -> StudyRun:
        for r in self.runs:
            if r.config.name.startswith(prefix):
                return r
        raise KeyError(f"no run named {prefix!r}; have {', '.join(r.config.name for r in self.runs)}")

    @property
    def table(self) -> str:
        """One line per configuration: the first/last hidden-layer gradient ratio at initialisation
        and after training, the final probe loss and test accuracy."""
        head = (
            f"{'network':<24} {'‖∂E/∂b¹‖/‖∂E/∂bᴴ‖ init':>24} {'after training':>15} "
            f"{'loss':>7} {'test acc':>8}  warnings"
        )
        lines = [head, "-" * len(head)]
        for r in self.runs:
            trained = (
                f"NaN by step {r.diverged_at}" if r.diverged_at is not None else _fmt_ratio(r.ratio_trained)
            )
            loss = "-" if r.final_loss is None else f"{r.final_loss:.3f}"
            acc = "-" if r.test_accuracy is None else f"{r.test_accuracy:.3f}"
            warn = ",".join(sorted({w["kind"] for w in r.flow.warnings})) or "-"
            lines.append(
                f"{r.config.name:<24} {_fmt_ratio(r.ratio_init):>24} {trained:>15} {loss:>7} {acc:>8}  {warn}"
            )
        return "\n".join(lines)

    def bound_table(self) -> str:
        """σ' ≤ 1/4 and the per-hop bound ``‖δ^l‖/‖δ^{l+1}‖ ≤ ‖W^{l+1}‖₂·max σ'(z^l) ≤ ‖W^{l+1}‖₂/4``
        of the sigmoid nets at initialisation (medians over the hops, and whether every hop held)."""
        sp = self.sigmoid_prime
        lines = [
            f"σ'(z) = σ(z)(1 − σ(z)): max over {sp['points']:.0f} points in "
            f"[{sp['z_min']:g}, {sp['z_max']:g}] is {sp['max']:.6f} at z = {sp['argmax']:g} (bound 1/4)",
            f"{'sigmoid net':<24} {'‖δˡ‖/‖δˡ⁺¹‖':>12} {'‖W‖₂·max σ′':>12} {'‖W‖₂/4':>9} "
            f"{'mean σ′':>8}  bound held",
        ]
        for r in self.runs:
            if not r.bound:
                continue
            med = {k: float(np.median([h[k] for h in r.bound])) for k in r.bound[0]}
            held = all(h["ratio"] <= h["bound"] * (1 + 1e-6) for h in r.bound)
            lines.append(
                f"{r.config.name:<24} {med['ratio']:>12.3g} {med['bound']:>12.3g} "
                f"{med['loose_bound']:>9.3g} {med['mean_sigmoid_prime']:>8.3g}  "
                f"{'yes' if held else 'NO'} ({len(r.bound)} hops)"
            )
        return "\n".join(lines)

    def to_dict(self, series: bool = False) -> dict[str, Any]:
        """JSON-safe summary; ``series=True`` adds every run's full gradient-flow record."""
        return {
            "settings": self.settings,
            "sigmoid_prime": self.sigmoid_prime,
            "runs": [r.to_dict(series) for r in self.runs],
        }


def sigmoid_prime_max(z_min: float = -20.0, z_max: float = 20.0, points: int = 40001) -> dict[str, float]:
    """Evaluate ``σ'(z) = σ(z)(1 − σ(z))`` on a grid (the layer's own derivative): its maximum and
    where it is (1/4 at 0)."""
    z = np.linspace(z_min, z_max, points)
    d = Sigmoid().fprime(z, sigmoid(z))
    k = int(np.argmax(d))
    return {"max": float(d[k]), "argmax": float(z[k]), "z_min": z_min, "z_max": z_max, "points": points}


def sigmoid_bound(net: Any, x: Any, y: Any) -> list[dict[str, float]]:
    """Per hop between consecutive hidden sigmoid layers: the measured ``‖δ^l‖/‖δ^{l+1}‖`` and its
    bounds ``‖W^{l+1}‖₂·max σ'(z^l)`` and ``‖W^{l+1}‖₂/4`` (row form: ``δ^l = (δ^{l+1} W^{l+1}ᵀ) ⊙
    σ'(z^l)``), plus the mean of ``σ'(z^l)`` over the batch. One traced forward/backward on
    ``(x, y)``; the seed-style layers are ``net.groups()`` and ``σ'`` is the sigmoid layer's own
    derivative, evaluated in float64."""
    with trace(net) as tr:
        net.loss_and_grad(x, y)
    hops = []
    for a, b in itertools.pairwise(tr.layers()):
        if a.activation != "sigmoid" or b.W is None:  # a hidden layer l with σ, and W^{l+1}
            continue
        act = net.layers[a.indices[1]]
        sp = act.fprime(np.asarray(a.z, dtype=np.float64), np.asarray(a.a, dtype=np.float64))
        w2 = float(np.linalg.norm(np.asarray(b.W, dtype=np.float64), 2))
        da, db = (np.asarray(t.delta, dtype=np.float64) for t in (a, b))
        ratio = float(np.linalg.norm(da) / np.linalg.norm(db))
        hops.append(
            {
                "ratio": ratio,
                "bound": w2 * float(sp.max()),
                "loose_bound": w2 / 4.0,
                "w_spectral": w2,
                "max_sigmoid_prime": float(sp.max()),
                "mean_sigmoid_prime": float(sp.mean()),
            }
        )
    return hops


QUICK = {"depths": (5,), "steps": 200, "probe_size": 500, "interval": 10}
FULL = {"depths": (5, 10), "steps": 1000, "probe_size": 1000, "interval": 20}


def run_study(
    quick: bool = False,
    *,
    data: Any = None,
    configs: Sequence[StudyConfig] | None = None,
    depths: Sequence[int] | None = None,
    width: int = 30,
    steps: int | None = None,
    batch_size: int = 10,
    lr: float = 0.1,
    probe_size: int | None = None,
    interval: int | None = None,
    seed: int = 0,
    progress: bool = False,
) -> StudyResult:
    """Train every configuration for ``steps`` SGD steps and record its gradient flow.

    ``quick`` uses 5 hidden layers, 200 steps and a 500-row probe (seconds on two cores); the full
    study 5 and 10 hidden layers, 1000 steps and a 1000-row probe. Explicit arguments override
    either. ``data`` is a :class:`~chainrule.io.Dataset` (default: the embedded MNIST subset).
    Mini-batches of 10 and ``lr = 0.1`` follow Nielsen's chapter 5; every net has a softmax
    cross-entropy output and the same seed, so the same data order.
    """
    preset = QUICK if quick else FULL
    depths = tuple(depths or preset["depths"])
    steps = int(steps or preset["steps"])
    probe_size = int(probe_size or preset["probe_size"])
    interval = int(interval or preset["interval"])
    if steps < 1 or batch_size < 1 or width < 1 or min(depths) < 2:
        raise ConfigError("the study needs steps, batch_size, width >= 1 and at least 2 hidden layers")
    if data is None:
        data = load_default()
    cfgs = list(configs) if configs is not None else default_configs(depths, width)
    if not cfgs:
        raise ConfigError("no configurations to study")
    n_train = data.n_train
    epochs = max(1, math.ceil(steps * batch_size / n_train))
    n_use = min(n_train, (steps * batch_size) // epochs)
    x, y = data.x_train[:n_use], data.y_train[:n_use]
    probe = min(probe_size, n_train)
    bar = None
    if progress:
        try:
            from tqdm.auto import tqdm  # optional: cli extra, a progress bar only

            bar = tqdm(total=len(cfgs), desc="vanishing", unit="net", file=sys.stderr, leave=False)
        except ImportError:
            bar = None
    runs = []
    for cfg in cfgs:
        if bar is not None:
            bar.set_postfix_str(cfg.name)
        runs.append(_run_one(cfg, data, x, y, probe, interval, epochs, batch_size, lr, seed))
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    settings = {
        "quick": quick,
        "dataset": data.name,
        "train_rows": int(n_use),
        "steps": int(epochs * math.ceil(n_use / batch_size)),
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "probe_size": probe,
        "interval": interval,
        "seed": seed,
        "optimizer": "sgd",
        "loss": "softmax-ce",
        "measure": "‖∂E/∂b^l‖ on a fixed probe batch (the first training rows)",
    }
    return StudyResult(runs, settings, sigmoid_prime_max())


def _run_one(
    cfg: StudyConfig,
    data: Any,
    x: np.ndarray,
    y: np.ndarray,
    probe: int,
    interval: int,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
) -> StudyRun:
    sizes = [data.n_features] + [cfg.width] * cfg.depth + [data.n_classes]
    net = mlp(sizes, cfg.activation, init=cfg.init, init_scale=cfg.init_scale, seed=seed)
    probe_x, probe_y = data.x_train[:probe], data.y_train[:probe]
    bound = sigmoid_bound(net, probe_x, probe_y) if cfg.activation == "sigmoid" else []
    flow = GradientFlow(interval=interval, probe=(probe_x, probe_y), probe_size=probe, warn=False)
    t0 = time.perf_counter()
    diverged = None
    # the exploding nets overflow on purpose; their NaNs are recorded, not warned about
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        try:
            fit(
                net,
                x,
                y,
                optimizer="sgd",
                lr=lr,
                batch_size=batch_size,
                epochs=epochs,
                seed=seed,
                callbacks=[flow],
                progress=False,
            )
        except TrainingDiverged:
            pass
        loss = flow.loss
        bad = np.flatnonzero(~np.isfinite(loss) | ~np.all(np.isfinite(flow.delta_norm), axis=1))
        if bad.size:
            diverged = int(flow.steps[bad[0]])
        ev = evaluate(net, data.x_test, data.y_test) if data.n_test and diverged is None else None
    seconds = time.perf_counter() - t0
    return StudyRun(
        cfg,
        flow,
        steps=int(flow.steps[-1]) if len(flow.steps) else 0,
        seconds=seconds,
        diverged_at=diverged,
        test_accuracy=None if ev is None else float(ev["accuracy"]),
        final_loss=None if diverged is not None else float(loss[-1]),
        bound=bound,
    )


def _fmt_ratio(r: float | None) -> str:
    return "-" if r is None else f"{r:.3g}"


def _finite_list(a: np.ndarray) -> list[float | None]:
    return [float(v) if math.isfinite(float(v)) else None for v in a]
