"""Gradient flow: per-layer gradient norms during training, and warnings when they vanish or explode.

Seed 004's BP2 says how the error travels back through a network (column form)::

    δ^l = ((W^{l+1})ᵀ δ^{l+1}) ⊙ σ'(z^l)

so every layer multiplies δ by a weight matrix and by the activation's derivative. When those
factors are mostly below 1 (a sigmoid: σ' ≤ 1/4) δ shrinks geometrically towards the input and the
first layers stop learning; when they are mostly above 1 (large weights) it grows geometrically
and training blows up. :class:`GradientFlow` watches this while :func:`chainrule.train.loop.fit` runs.

What is recorded, for every seed-style layer ``l`` (:meth:`~chainrule.nn.model.Sequential.groups`)
whose head has a weight ``W`` (``Dense``, ``Maxout`` ...), at step 0 (the initial weights) and then
every ``interval`` optimisation steps:

* ``delta_norm``: ``‖δ^l‖``, the Frobenius norm over the probe batch of ``dy = ∂E/∂z^l``, the
  gradient arriving at the layer's ``backward`` (the row form of seed 004's δ; the batch-mean
  ``1/N`` is inside it);
* ``bias_grad_norm``: ``‖∂E/∂b^l‖ = ‖Σ_rows δ^l‖``, the quantity Nielsen plots in chapter 5 (the
  head's other parameter; NaN when it has none);
* ``grad_norm``: ``‖∂E/∂W^l‖`` (with the L2 term ``λW`` when training uses it);
* ``weight_norm``: ``‖W^l‖``;
* ``update_ratio``: ``‖ΔW^l‖ / ‖W^l‖`` for the optimisation step that led to the recorded step,
  *measured*: the weights are copied one step before each recorded step and the ratio is
  ``‖W_s − W_{s−1}‖ / ‖W_{s−1}‖``. For plain SGD that equals ``lr·‖∂E/∂W‖/‖W‖`` on the batch the
  step used; for momentum or Adam it is what the optimiser really did. It is ``NaN`` at step 0.

How (the probe): training may run through a fast runner that never calls the layer-by-layer
driver, so nothing here depends on hooks firing during training steps. At ``on_train_begin`` a
fixed probe batch is taken (the first ``probe_size`` training rows, default the batch size), and at
each recorded step the callback runs one extra ``net.loss_and_grad(probe_x, probe_y)`` with a
temporary hook on the driver that reads each ``δ^l``. Gradients are dead between steps (every step
recomputes them and the optimiser's state lives in the optimiser), and the callback puts the
parameter gradients and ``net.output`` back as it found them anyway, so training is unchanged.
The extra cost is one plain forward/backward pass on the probe batch (about one to two training
steps of the fast runner) per ``interval`` steps. At the default ``interval=100`` the time spent
inside the callback is about 2% of ``fit`` on MNIST 784-256-128-10 and on 784-30-10 (batch 128);
at ``interval=50`` it is about 3.6% and 4.1% (``docs/vanishing.md`` has the measurement).

Warnings: a :class:`GradientFlowWarning` (a ``UserWarning``) is issued, and an entry appended to
:attr:`GradientFlow.warnings`, when at a recorded step

* a layer's ``‖δ^l‖`` is not finite (``nonfinite``);
* ``‖δ^l‖`` is less than ``vanish_ratio`` (1e-3) times the largest ``‖δ^k‖`` of a layer nearer the
  output (``vanishing``: the error shrank that much on its way back to layer ``l``);
* ``‖δ^l‖`` is more than ``explode_ratio`` (1e3) times the smallest ``‖δ^k‖`` of a layer nearer the
  output (``exploding``: it grew that much on its way back).

Comparing only with layers nearer the output keeps the direction of travel: in a net whose
gradient explodes, the output layer is not called "vanishing" merely for being the smallest.
The list gets one entry per episode (a layer that is flagged at consecutive recorded steps is one
entry, at the step it started); Python's warning is issued once per (layer, kind).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from chainrule.backend import namespace, to_numpy
from chainrule.errors import ConfigError, DataError
from chainrule.nn.params import Param
from chainrule.train.callbacks import Callback, TrainState

__all__ = ["METRICS", "GradientFlow", "GradientFlowWarning", "flow_layers"]

#: The per-layer series a :class:`GradientFlow` records, in ``to_dict()`` order.
METRICS = ("delta_norm", "bias_grad_norm", "grad_norm", "weight_norm", "update_ratio")

#: records every 100 steps keep the overhead near 2% (see the module docstring)
DEFAULT_INTERVAL = 100


class GradientFlowWarning(UserWarning):
    """A layer's gradient vanished, exploded or became NaN/Inf (see :mod:`chainrule.train.flow`)."""


def flow_layers(net: Any) -> list[tuple[int, str]]:
    """``(index in net.layers, label)`` of every layer whose gradient flow is recorded: the head of
    each of ``net.groups()`` that has a weight ``W``, labelled ``"1: 784→256"``."""
    out = []
    for g in net.groups():
        W = getattr(g.head, "W", None)
        if isinstance(W, Param):
            d_in = getattr(g.head, "in_features", W.shape[0])
            d_out = getattr(g.head, "out_features", W.shape[-1])
            out.append((g.indices[0], f"{len(out) + 1}: {d_in}→{d_out}"))
    return out


def _bias(layer: Any) -> Param | None:
    """The head's parameter beside ``W`` (``b``, or a tied layer's ``c``); None if it has none."""
    return next((p for p in layer.params if p is not layer.W), None)


class _DeltaHook:
    """Driver hook that keeps the ``dy`` (= δ) arriving at each watched layer's backward."""

    def __init__(self, indices: Sequence[int]) -> None:
        self.watch = set(indices)
        self.dy: dict[int, Any] = {}

    def on_forward(self, index: int, layer: Any, x: Any, y: Any) -> None:
        pass

    def on_backward(self, index: int, layer: Any, dy: Any, dx: Any) -> None:
        if index in self.watch:
            self.dy[index] = dy


def _sqnorm(a: Any) -> Any:
    """``Σ a²`` as a 0-d backend array in ``a``'s own precision (a BLAS dot on NumPy, no copy).

    A float32 sum of squares overflows only when the norm exceeds ~1.8e19; :meth:`GradientFlow.record`
    recomputes any infinite result with :func:`_sqnorm64`, so a finite gradient never reads as Inf.
    """
    xp = namespace(a)
    v = xp.reshape(a, (-1,))
    if xp is np:
        return np.dot(v, v)
    return xp.sum(v * v)


def _sqnorm64(a: Any) -> float:
    """``Σ a²`` in float64 on the host (the slow, overflow-free path)."""
    v = to_numpy(a).astype(np.float64).ravel()
    return float(np.dot(v, v))


class GradientFlow(Callback):
    """Record per-layer gradient norms during :func:`~chainrule.train.loop.fit` (see the module doc).

    Args:
        interval: record every ``interval`` optimisation steps (and at step 0).
        probe_size: rows of the fixed probe batch (default: the training batch size).
        probe: an explicit ``(x, y)`` probe batch instead of the first training rows (host arrays
            are moved to the network's backend at ``on_train_begin``).
        vanish_ratio, explode_ratio: warning thresholds (see the module doc).
        warn: issue Python warnings (the :attr:`warnings` list is kept either way).

    After training, :attr:`steps` is a ``(T,)`` int array and each metric of :data:`METRICS` is a
    ``(T, L)`` float array (``flow.series("delta_norm")`` or ``flow.delta_norm``), one column per
    layer of :attr:`layers`.

    >>> flow = GradientFlow(interval=20)
    >>> history = fit(net, x, y, callbacks=[flow])       # doctest: +SKIP
    >>> flow.delta_norm[-1]                               # doctest: +SKIP
    """

    def __init__(
        self,
        interval: int = DEFAULT_INTERVAL,
        *,
        probe_size: int | None = None,
        probe: tuple[Any, Any] | None = None,
        vanish_ratio: float = 1e-3,
        explode_ratio: float = 1e3,
        warn: bool = True,
    ) -> None:
        if int(interval) < 1:
            raise ConfigError(f"gradient-flow interval must be at least 1, got {interval}")
        if probe_size is not None and int(probe_size) < 1:
            raise ConfigError(f"probe_size must be positive, got {probe_size}")
        if not (0 < vanish_ratio < 1 < explode_ratio):
            raise ConfigError("need 0 < vanish_ratio < 1 < explode_ratio")
        self.interval = int(interval)
        self.probe_size = None if probe_size is None else int(probe_size)
        self.vanish_ratio = float(vanish_ratio)
        self.explode_ratio = float(explode_ratio)
        self.warn = warn
        self._user_probe = probe
        #: layer labels, one per recorded column (``"1: 784→256"``)
        self.layers: list[str] = []
        #: vanishing/exploding/non-finite episodes: dicts with step, layer, kind, ratio, message
        self.warnings: list[dict[str, Any]] = []
        self._steps: list[int] = []
        self._rows: dict[str, list[list[float]]] = {m: [] for m in METRICS}
        self._loss: list[float] = []
        self._warned: set[tuple[str, str]] = set()
        self._active: set[tuple[int, str]] = set()
        self._net: Any = None
        self._indices: list[int] = []
        self._probe: tuple[Any, Any] | None = None
        self._l2 = 0.0
        self._prev_w: list[Any] | None = None

    # -- callback protocol -------------------------------------------------------------------
    def on_train_begin(self, trainer: TrainState) -> None:
        x, y = trainer.x, trainer.y
        if self._user_probe is not None:
            backend = trainer.net.backend
            dtype = np.dtype(str(trainer.net.dtype).replace("torch.", ""))
            x, y = backend.asarray(self._user_probe[0], dtype=dtype), backend.asarray(self._user_probe[1])
        self.attach(trainer.net, x, y, l2=trainer.l2, batch_size=trainer.batch_size)
        self._after_step(trainer.step)

    def on_step(self, step: int) -> None:
        self._after_step(step)

    # -- usable without fit ----------------------------------------------------------------------
    def attach(self, net: Any, x: Any, y: Any, *, l2: float = 0.0, batch_size: int | None = None) -> None:
        """Fix the network and probe batch (``fit`` does this in ``on_train_begin``) and start a
        fresh record: one :class:`GradientFlow` describes one training run."""
        watched = flow_layers(net)
        if not watched:
            raise ConfigError("gradient flow needs a network with weighted layers (Dense, Maxout ...)")
        if x.shape[0] == 0:
            raise DataError("gradient flow needs at least one training row for its probe batch")
        n = self.probe_size or batch_size or x.shape[0]
        n = min(int(n), int(x.shape[0]))
        self._net = net
        self._indices = [i for i, _ in watched]
        self.layers = [label for _, label in watched]
        self._probe = (x[:n], y[:n])
        self._l2 = float(l2)
        self._prev_w = None
        self._steps, self._loss, self._rows = [], [], {m: [] for m in METRICS}
        self.warnings, self._warned, self._active = [], set(), set()

    def record(self, step: int) -> None:
        """Run the probe now and append one row of every metric (``update_ratio`` from the weights
        copied by the previous :meth:`snapshot`, NaN if none)."""
        if self._net is None or self._probe is None:
            raise ConfigError("GradientFlow.record() before attach() / fit()")
        net = self._net
        layers = [net.layers[i] for i in self._indices]
        biases = [_bias(layer) for layer in layers]
        prev_w = self._prev_w
        saved_grads = [namespace(p.grad).asarray(p.grad, copy=True) for p in net.params]
        saved_output = net.output
        hook = _DeltaHook(self._indices)
        net.hooks.append(hook)
        try:
            loss = net.loss_and_grad(*self._probe, l2=self._l2)
            # one host transfer for all the norms: 4 (or 6) blocks of L squared norms
            arrays = [hook.dy[i] for i in self._indices]
            arrays += [layer.W.grad if b is None else b.grad for layer, b in zip(layers, biases, strict=True)]
            arrays += [layer.W.grad for layer in layers]
            arrays += [layer.W.value for layer in layers]
            if prev_w is not None:
                arrays += [layer.W.value - w for layer, w in zip(layers, prev_w, strict=True)]
                arrays += prev_w
            sq = [_sqnorm(a) for a in arrays]
            values = to_numpy(namespace(sq[0]).stack(sq)).astype(np.float64)
            for k in np.flatnonzero(np.isinf(values)):  # float32 overflow: redo in float64
                values[k] = _sqnorm64(arrays[k])
            values = np.sqrt(values)
            loss = float(to_numpy(loss))
        finally:
            net.hooks.remove(hook)
            for p, g in zip(net.params, saved_grads, strict=True):
                p.grad[...] = g
            net.output = saved_output
        n_l = len(layers)
        delta, bgrad, wgrad, wnorm = (values[k * n_l : (k + 1) * n_l] for k in range(4))
        bgrad[[b is None for b in biases]] = np.nan  # a head without a bias (its W stood in above)
        if prev_w is not None:
            with np.errstate(divide="ignore", invalid="ignore"):
                update = values[4 * n_l : 5 * n_l] / values[5 * n_l :]
        else:
            update = np.full(n_l, np.nan)
        self._prev_w = None
        self._steps.append(int(step))
        self._loss.append(loss)
        for name, row in zip(METRICS, (delta, bgrad, wgrad, wnorm, update), strict=True):
            self._rows[name].append([float(v) for v in row])
        self._check(int(step), delta)

    def snapshot(self) -> None:
        """Copy the current weights so the next :meth:`record` can measure ``‖ΔW‖/‖W‖``."""
        net = self._net
        self._prev_w = [
            namespace(net.layers[i].W.value).asarray(net.layers[i].W.value, copy=True) for i in self._indices
        ]

    def _after_step(self, step: int) -> None:
        if step % self.interval == 0:
            self.record(step)
        if (step + 1) % self.interval == 0:
            self.snapshot()

    # -- warnings ---------------------------------------------------------------------------------
    def _check(self, step: int, delta: np.ndarray) -> None:
        active: set[tuple[int, str]] = set()
        for l in range(len(delta)):
            g = float(delta[l])
            if not math.isfinite(g):
                active.add((l, "nonfinite"))
                self._flag(step, l, "nonfinite", math.nan, f"‖δ‖ of layer {self.layers[l]} is {g}")
                continue
            later = [float(v) for v in delta[l + 1 :] if math.isfinite(float(v))]
            if not later:
                continue
            hi, lo = max(later), min(later)
            if hi > 0 and g < self.vanish_ratio * hi:
                active.add((l, "vanishing"))
                self._flag(
                    step,
                    l,
                    "vanishing",
                    g / hi,
                    f"‖δ‖ of layer {self.layers[l]} is {g / hi:.2g} × the largest of the layers after it "
                    f"(threshold {self.vanish_ratio:g})",
                )
            elif lo > 0 and g > self.explode_ratio * lo:
                active.add((l, "exploding"))
                self._flag(
                    step,
                    l,
                    "exploding",
                    g / lo,
                    f"‖δ‖ of layer {self.layers[l]} is {g / lo:.2g} × the smallest of the layers after it "
                    f"(threshold {self.explode_ratio:g})",
                )
        self._active = active

    def _flag(self, step: int, layer: int, kind: str, ratio: float, detail: str) -> None:
        if (layer, kind) in self._active:  # still the same episode as at the previous record
            return
        message = f"{kind} gradient at step {step}: {detail}"
        self.warnings.append(
            {
                "step": step,
                "layer": self.layers[layer],
                "kind": kind,
                "ratio": None if not math.isfinite(ratio) else ratio,
                "message": message,
            }
        )
        key = (self.layers[layer], kind)
        if self.warn and key not in self._warned:
            self._warned.add(key)
            warnings.warn(message, GradientFlowWarning, stacklevel=2)

    # -- results ----------------------------------------------------------------------------------
    @property
    def steps(self) -> np.ndarray:
        """Recorded step numbers, ``(T,)`` int64 (step 0 is the initial weights)."""
        return np.asarray(self._steps, dtype=np.int64)

    @property
    def loss(self) -> np.ndarray:
        """The cost on the probe batch at each recorded step, ``(T,)``."""
        return np.asarray(self._loss, dtype=np.float64)

    def series(self, metric: str) -> np.ndarray:
        """``(T, L)`` float64 array of one of :data:`METRICS`."""
        if metric not in self._rows:
            raise ConfigError(f"unknown gradient-flow metric {metric!r}; choose {', '.join(METRICS)}")
        return np.asarray(self._rows[metric], dtype=np.float64).reshape(len(self._steps), len(self.layers))

    @property
    def delta_norm(self) -> np.ndarray:
        """``‖δ^l‖`` on the probe batch, ``(T, L)``."""
        return self.series("delta_norm")

    @property
    def bias_grad_norm(self) -> np.ndarray:
        """``‖∂E/∂b^l‖``, ``(T, L)``."""
        return self.series("bias_grad_norm")

    @property
    def grad_norm(self) -> np.ndarray:
        """``‖∂E/∂W^l‖``, ``(T, L)``."""
        return self.series("grad_norm")

    @property
    def weight_norm(self) -> np.ndarray:
        """``‖W^l‖``, ``(T, L)``."""
        return self.series("weight_norm")

    @property
    def update_ratio(self) -> np.ndarray:
        """Measured ``‖ΔW^l‖ / ‖W^l‖`` of the step that led to each recorded step, ``(T, L)``."""
        return self.series("update_ratio")

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe record: ``steps``, ``layers``, ``loss``, ``series`` (metric → T×L list, NaN and
        Inf as ``null``), ``warnings`` and the settings."""
        return {
            "interval": self.interval,
            "probe_size": None if self._probe is None else int(self._probe[0].shape[0]),
            "vanish_ratio": self.vanish_ratio,
            "explode_ratio": self.explode_ratio,
            "layers": list(self.layers),
            "steps": list(self._steps),
            "loss": [_json_float(v) for v in self._loss],
            "series": {m: [[_json_float(v) for v in row] for row in self._rows[m]] for m in METRICS},
            "warnings": [dict(w) for w in self.warnings],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GradientFlow:
        """Rebuild the recorded series from :meth:`to_dict` (for plots and reports; it cannot
        resume recording). Raises :class:`~chainrule.errors.DataError` on a malformed record."""
        if not isinstance(d, dict):
            raise DataError(f"gradient_flow must be an object, got {type(d).__name__}")
        for key in ("layers", "steps", "series"):
            if key not in d:
                raise DataError(f"gradient_flow is missing '{key}'")
        layers, steps, series = d["layers"], d["steps"], d["series"]
        if not isinstance(layers, list) or not all(isinstance(s, str) for s in layers):
            raise DataError("gradient_flow.layers must be a list of strings")
        if not isinstance(steps, list) or not all(
            isinstance(s, int) and not isinstance(s, bool) for s in steps
        ):
            raise DataError("gradient_flow.steps must be a list of integers")
        if not isinstance(series, dict):
            raise DataError("gradient_flow.series must be an object")
        try:
            flow = cls(
                interval=int(d.get("interval", DEFAULT_INTERVAL)),
                vanish_ratio=float(d.get("vanish_ratio", 1e-3)),
                explode_ratio=float(d.get("explode_ratio", 1e3)),
                warn=False,
            )
        except (TypeError, ValueError) as exc:
            raise DataError(f"gradient_flow has bad settings: {exc}") from None
        flow.layers = list(layers)
        flow._steps = list(steps)
        for m in METRICS:
            rows = series.get(m)
            if rows is None:
                rows = [[None] * len(layers) for _ in steps]
            if not isinstance(rows, list) or len(rows) != len(steps):
                raise DataError(f"gradient_flow.series.{m} must have one row per step ({len(steps)})")
            flow._rows[m] = [_float_row(r, len(layers), m) for r in rows]
        loss = d.get("loss") or [None] * len(steps)
        if not isinstance(loss, list) or len(loss) != len(steps):
            raise DataError("gradient_flow.loss must have one value per step")
        flow._loss = _float_row(loss, len(steps), "loss")
        w = d.get("warnings") or []
        if not isinstance(w, list) or not all(isinstance(e, dict) for e in w):
            raise DataError("gradient_flow.warnings must be a list of objects")
        flow.warnings = [dict(e) for e in w]
        return flow

    def summary(self) -> str:
        """A few lines: the first and last recorded ‖δ‖ of each layer, and the warnings."""
        if not self._steps:
            return "gradient flow: nothing recorded"
        d = self.series("delta_norm")
        lines = [f"gradient flow (‖δ‖ per layer, steps {self._steps[0]}..{self._steps[-1]}):"]
        for j, name in enumerate(self.layers):
            lines.append(f"  {name:>14}  {d[0, j]:.3g} → {d[-1, j]:.3g}")
        kinds = sorted({w["kind"] for w in self.warnings})
        if kinds:
            lines.append(f"  warnings: {len(self.warnings)} ({', '.join(kinds)})")
        return "\n".join(lines)


def _json_float(v: float) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None


def _float_row(row: Any, n: int, what: str) -> list[float]:
    if not isinstance(row, list) or len(row) != n:
        raise DataError(f"gradient_flow.series.{what}: each row must be a list of {n} numbers")
    out = []
    for v in row:
        if v is None:
            out.append(math.nan)
        elif isinstance(v, int | float) and not isinstance(v, bool):
            out.append(float(v))
        else:
            raise DataError(f"gradient_flow.series.{what}: {v!r} is not a number")
    return out
