"""Recurrent layers over sequences, and backpropagation through time (BPTT).

Layout: a batch of sequences is ``x: (N, T, D)``; each layer returns every step's hidden state
``y: (N, T, H)`` (put ``last`` after it for the last step only). Inside, arrays are time-major,
``(T, N, ·)``, so each step's slice is contiguous.

Weights are fused over the ``G`` gates (column blocks of width ``H``)::

    W: (D, G·H)   input weights          U: (H, G·H)   recurrent weights        b: (G·H,)

Two things are done once for all steps because the algebra allows it:

* the input projection ``A_t = x_t W + b`` for every ``t`` is one GEMM ``(T·N, D)·(D, G·H)``;
* the weight gradients are sums over time, ``∂E/∂U = Σ_t h_{t−1}ᵀ δa_t`` and
  ``∂E/∂W = Σ_t x_tᵀ δa_t``, so each is one GEMM over the ``T·N`` rows of all steps.

Only the recurrence itself is a loop: one ``(N, H)·(H, G·H)`` GEMM per step for all gates at once.

**State.** ``initial_state`` (``None``: zeros) is an *input* the caller sets, like training mode:
a tuple ``(h0,)`` (``(h0, c0)`` for the LSTM) of ``(N, H)`` arrays. The final state of a pass is
``final_state(ctx)``; carrying it into the next batch is stateful truncated BPTT (the gradient
stops at the batch boundary). :meth:`Recurrent.run` / :meth:`Recurrent.run_backward` take and
return the state explicitly, with ``∂E/∂state₀``, for checks through the initial state.

Initialisation follows PyTorch's ``nn.RNN``/``nn.LSTM``/``nn.GRU``: every entry of ``W``, ``U`` and
the biases from ``U(−1/√H, 1/√H)`` (drawn from NumPy's seeded generator).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from chainrule.backend import namespace
from chainrule.errors import ConfigError, ShapeError
from chainrule.nn.functional import sigmoid
from chainrule.nn.layer import LAYERS, Elementwise, Layer, SpecContext, register_layer, spec_number
from chainrule.nn.layers.dense import positive_ints
from chainrule.nn.params import Param

__all__ = ["GRU", "LSTM", "RNN", "Recurrent", "recurrent_layers", "sequence_width"]

State = tuple[Any, ...]


def sequence_width(kind: str, input_shape: tuple[int, ...]) -> int:
    """``D`` of sequences ``(T, D)``; any other per-sample shape is a :class:`ShapeError`."""
    if len(input_shape) != 2:
        raise ShapeError(
            f"{kind} reads sequences (T, D), got samples of shape {tuple(input_shape)}: put 'onehot:V' "
            f"or 'embed:V:D' before it for token ids"
        )
    return int(input_shape[1])


def _empty(xp: Any, shape: tuple[int, ...], like: Any) -> Any:
    if isinstance(like, np.ndarray):
        return np.empty(shape, like.dtype)
    return xp.empty(shape, dtype=like.dtype, device=like.device)


def _zeros(xp: Any, shape: tuple[int, ...], like: Any) -> Any:
    if isinstance(like, np.ndarray):
        return np.zeros(shape, like.dtype)
    return xp.zeros(shape, dtype=like.dtype, device=like.device)


def _rows(xp: Any, a: Any) -> Any:
    """``(T, N, F) -> (T·N, F)``: all steps' rows stacked (a view when contiguous)."""
    return xp.reshape(a, (a.shape[0] * a.shape[1], a.shape[2]))


class Recurrent(Layer):
    """What the three cells share: fused weights, the input projection, state handling, the
    all-steps weight-gradient GEMMs, shapes, config and spec. A cell defines ``gates`` (``G``),
    ``state_size`` (1, or 2 for the LSTM), ``_loop`` and ``_loop_backward``."""

    gates: ClassVar[int] = 1
    state_size: ClassVar[int] = 1
    input_rank = 2
    extra_biases: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        in_features: int,
        hidden: int,
        *,
        rng: np.random.Generator | int | None = None,
        dtype: Any = np.float32,
        **arrays: Any,
    ) -> None:
        """``arrays``: ``W (D, G·H)``, ``U (H, G·H)``, ``b (G·H,)`` (and the GRU's ``c (H,)``) to use
        as given; the others are drawn from ``U(−1/√H, 1/√H)`` with ``rng``."""
        super().__init__()
        d, h = positive_ints({"in_features": in_features, "hidden": hidden}, "in_features", "hidden")
        self.in_features, self.hidden = d, h
        shapes = self.state_shapes({"in_features": d, "hidden": h})
        unknown = set(arrays) - set(shapes)
        if unknown:
            raise ConfigError(f"{type(self).__name__}: unknown arguments {sorted(unknown)}")
        gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        k = 1.0 / math.sqrt(h)
        self.params = []
        for name, shape in shapes.items():
            value = arrays.get(name)
            if value is None:
                value = gen.uniform(-k, k, size=shape).astype(dtype)
            if tuple(value.shape) != shape:
                raise ShapeError(f"{type(self).__name__}: {name} must have shape {shape}, got {value.shape}")
            p = Param(value, name, decay=name in ("W", "U"))
            setattr(self, name, p)
            self.params.append(p)
        self.initial_state: State | None = None
        #: a fast implementation of the two time loops (``loop``/``loop_backward``, same arithmetic),
        #: attached by :func:`chainrule.accel.recurrent.install`; ``None``: the loops below
        self.kernel: Any = None

    # -- registry ------------------------------------------------------------------------------
    @classmethod
    def state_shapes(cls, cfg: dict[str, Any]) -> dict[str, tuple[int, ...]]:
        d, h = positive_ints(cfg, "in_features", "hidden")
        g = cls.gates * h
        shapes = {"W": (d, g), "U": (h, g), "b": (g,)}
        shapes.update({name: (h,) for name in cls.extra_biases})
        return shapes

    def config(self) -> dict[str, Any]:
        return {"type": self.kind, "in_features": self.in_features, "hidden": self.hidden}

    @classmethod
    def from_config(cls, cfg: dict[str, Any], dtype: Any = np.float32, built: Sequence[Layer] = ()) -> Layer:
        shapes = cls.state_shapes(cfg)
        extra = {k: v for k, v in cfg.items() if k not in ("in_features", "hidden")}
        zeros = {name: np.zeros(s, dtype) for name, s in shapes.items()}
        try:
            return cls(int(cfg["in_features"]), int(cfg["hidden"]), dtype=dtype, **zeros, **extra)
        except TypeError as exc:
            raise ConfigError(f"bad options for layer {cls.kind!r}: {exc}") from None

    @classmethod
    def example(cls, rng: np.random.Generator, dtype: Any = np.float64) -> tuple[Layer, tuple[int, ...]]:
        return cls(3, 4, rng=rng, dtype=dtype), (5, 3)

    @classmethod
    def spec_config(cls, args: dict[str, str], input_shape: tuple[int, ...]) -> dict[str, Any]:
        return {
            "type": cls.kind,
            "in_features": sequence_width(cls.kind, input_shape),
            "hidden": spec_number(args, "h", lo=1),
        }

    @classmethod
    def from_spec(cls, cfg: dict[str, Any], ctx: SpecContext) -> Layer:
        extra = {k: v for k, v in cfg.items() if k not in ("type", "in_features", "hidden")}
        return cls(cfg["in_features"], cfg["hidden"], rng=ctx.rng, dtype=ctx.dtype, **extra)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(input_shape) != 2 or int(input_shape[1]) != self.in_features:
            raise ShapeError(
                f"{self.kind} expects sequences (T, {self.in_features}), got samples of shape "
                f"{tuple(input_shape)}"
            )
        return (int(input_shape[0]), self.hidden)

    def extra_repr(self) -> str:
        return f"{self.in_features} -> {self.hidden}"

    # -- the contract ----------------------------------------------------------------------------
    def forward(self, x: Any) -> tuple[Any, Any]:
        return self.run(x, self.initial_state)

    def backward(self, dy: Any, ctx: Any, *, need_dx: bool = True) -> Any:
        return self.run_backward(dy, ctx, need_dx=need_dx)[0]

    def zero_state(self, n: int, like: Any) -> State:
        xp = namespace(like)
        return tuple(_zeros(xp, (n, self.hidden), like) for _ in range(self.state_size))

    def check_state(self, state: State | None, x: Any) -> State:
        """The given initial state, checked against the batch, or zeros."""
        n = x.shape[0]
        if state is None:
            return self.zero_state(n, self.W.value)
        if len(state) != self.state_size or any(tuple(s.shape) != (n, self.hidden) for s in state):
            shapes = [tuple(getattr(s, "shape", ())) for s in state]
            raise ShapeError(
                f"{self.kind} initial state must be {self.state_size} array(s) of shape {(n, self.hidden)}, "
                f"got {shapes}"
            )
        return tuple(state)

    def run(self, x: Any, state: State | None = None) -> tuple[Any, Any]:
        """Forward from ``state``: ``(y (N, T, H), ctx)``; ``final_state(ctx)`` is the last state."""
        xp = namespace(x, self.W.value)
        if x.ndim != 3 or x.shape[2] != self.in_features:
            raise ShapeError(f"{self.kind} expects (N, T, {self.in_features}) input, got {tuple(x.shape)}")
        if x.shape[1] < 1:
            raise ShapeError(f"{self.kind} needs at least one time step, got {tuple(x.shape)}")
        state0 = self.check_state(state, x)
        n, t, _ = x.shape
        x_rows = xp.reshape(xp.permute_dims(x, (1, 0, 2)), (t * n, self.in_features))  # (T·N, D)
        fast = self.kernel is not None and isinstance(x, np.ndarray)
        if fast:
            a = self.kernel.project(self, x_rows, (t, n))
        else:
            a = xp.reshape(x_rows @ self.W.value + self.b.value, (t, n, self.gates * self.hidden))
        hs, cache = self.kernel.loop(self, a, state0) if fast else self._loop(xp, a, state0)
        return xp.permute_dims(hs[1:], (1, 0, 2)), (x_rows, hs, cache)

    def run_backward(
        self, dy: Any, ctx: Any, dstate: State | None = None, *, need_dx: bool = True
    ) -> tuple[Any, State]:
        """``(∂E/∂x, ∂E/∂state₀)`` from ``dy = ∂E/∂y`` (and ``dstate``, ``∂E/∂`` of the final state);
        accumulates ``∂E/∂W``, ``∂E/∂U``, ``∂E/∂b`` over all steps."""
        xp = namespace(dy, self.W.value)
        x_rows, hs, _ = ctx
        n = hs.shape[1]
        dys = xp.permute_dims(dy, (1, 0, 2))  # (T, N, H) view
        if dstate is None:
            dstate = self.zero_state(n, dy)
        if self.kernel is not None and isinstance(dys, np.ndarray):
            da, dr, dstate0 = self.kernel.loop_backward(self, dys, ctx, tuple(dstate))
            return self.kernel.accumulate(self, x_rows, hs, da, dr, need_dx), dstate0
        da, dr, dstate0 = self._loop_backward(xp, dys, ctx, tuple(dstate))
        return self.accumulate(xp, x_rows, hs, da, dr, need_dx), dstate0

    def accumulate(self, xp: Any, x_rows: Any, hs: Any, da: Any, dr: Any, need_dx: bool) -> Any:
        """The sums over time, one GEMM each over all ``T·N`` rows; returns ``∂E/∂x`` or ``None``."""
        t, n = hs.shape[0] - 1, hs.shape[1]
        da_rows, dr_rows = _rows(xp, da), _rows(xp, dr)
        self.U.grad += _rows(xp, hs[:-1]).T @ dr_rows  # Σ_t h_{t−1}ᵀ δr_t      (H, G·H)
        self.W.grad += x_rows.T @ da_rows  # Σ_t x_tᵀ δa_t                           (D, G·H)
        self.b.grad += xp.sum(da_rows, axis=0)
        if not need_dx:
            return None
        dx = xp.reshape(da_rows @ self.W.value.T, (t, n, self.in_features))
        return xp.permute_dims(dx, (1, 0, 2))

    def final_state(self, ctx: Any) -> State:
        """The state after the last step of the pass that produced ``ctx`` (to carry forward)."""
        return (ctx[1][-1],)

    # -- the cell --------------------------------------------------------------------------------
    def _loop(self, xp: Any, a: Any, state0: State) -> tuple[Any, Any]:
        raise NotImplementedError

    def _loop_backward(self, xp: Any, dys: Any, ctx: Any, dstate: State) -> tuple[Any, Any, State]:
        """``(δa (T, N, G·H), δr (T, N, G·H), ∂E/∂state₀)``: ``δa`` multiplies the input weights
        and ``δr`` the recurrent ones (the same array except in the GRU)."""
        raise NotImplementedError


@register_layer
class RNN(Recurrent):
    """Vanilla (Elman) RNN: ``h_t = f(z_t)``, ``z_t = x_t W + h_{t−1} U + b``.

    Shapes: ``x_t (N, D)``, ``h_t (N, H)``, ``W (D, H)``, ``U (H, H)``, ``b (H,)``; ``f`` is any
    registered element-wise activation (``tanh`` by default, ``relu``...).

    BPTT, with ``dy_t = ∂E/∂h_t`` from the layers above and ``δz_{T+1} = 0``::

        δh_t = dy_t + δz_{t+1} Uᵀ          (N, H)·(H, H)   the path through the next step
        δz_t = δh_t ⊙ f′(z_t)              (N, H)
        ∂E/∂U = Σ_t h_{t−1}ᵀ δz_t           (H, N)·(N, H)   one GEMM over all (t, n) rows
        ∂E/∂W = Σ_t x_tᵀ δz_t,  ∂E/∂b = Σ_t Σ_n δz_t,  ∂E/∂x_t = δz_t Wᵀ,  ∂E/∂h_0 = δz_1 Uᵀ

    Each step multiplies ``δ`` by ``diag(f′(z_t)) Uᵀ``: with ``|f′| ≤ 1`` (tanh) and a small ``U``
    the gradient shrinks geometrically with the distance from the loss (seed 004's argument,
    carried through time: ``chainrule vanishing --rnn``).
    """

    kind = "rnn"
    spec = "rnn:H[:ACT]"
    symbol = "rnn"
    formula = "h_t = f(x_t W + h_{t−1} U + b)"
    formula_latex = r"h_t = f(x_t W + h_{t-1} U + b)"
    derivative = "δh_t = dy_t + δz_{t+1} Uᵀ,  δz_t = δh_t ⊙ f′(z_t),  ∂E/∂U = Σ_t h_{t−1}ᵀ δz_t"
    derivative_latex = (
        r"\delta h_t = \partial E/\partial y_t + \delta z_{t+1} U^{\top},\ "
        r"\delta z_t = \delta h_t \odot f'(z_t),\ \frac{\partial E}{\partial U} = \sum_t h_{t-1}^{\top}\delta z_t"
    )

    def __init__(self, in_features: int, hidden: int, *, activation: str = "tanh", **kw: Any) -> None:
        cls = LAYERS.get(activation)
        if cls is None or not issubclass(cls, Elementwise):
            raise ConfigError(f"rnn activation must be an element-wise activation, got {activation!r}")
        self.activation = activation
        self.f: Elementwise = cls()  # type: ignore[assignment]
        super().__init__(in_features, hidden, **kw)

    @classmethod
    def spec_config(cls, args: dict[str, str], input_shape: tuple[int, ...]) -> dict[str, Any]:
        act = args.get("act", "tanh")
        if not (LAYERS.get(act) and LAYERS[act].elementwise):
            raise ConfigError(f"ACT must be an element-wise activation, got {act!r}")
        base = super().spec_config({k: v for k, v in args.items() if k == "h"}, input_shape)
        return {**base, "activation": act}

    def config(self) -> dict[str, Any]:
        return {**super().config(), "activation": self.activation}

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, {self.activation}"

    def _loop(self, xp: Any, a: Any, state0: State) -> tuple[Any, Any]:
        t, n, h = a.shape
        hs, zs = _empty(xp, (t + 1, n, h), a), _empty(xp, (t, n, h), a)
        hs[0] = state0[0]
        u = self.U.value
        for s in range(t):
            zs[s] = a[s] + hs[s] @ u  # z_t = x_t W + b + h_{t−1} U
            hs[s + 1] = self.f.f(zs[s])  # h_t = f(z_t)
        return hs, zs

    def _loop_backward(self, xp: Any, dys: Any, ctx: Any, dstate: State) -> tuple[Any, Any, State]:
        _, hs, zs = ctx
        dz = _empty(xp, zs.shape, zs)
        ut = self.U.value.T
        dh_next = dstate[0]  # δz_{t+1} Uᵀ, or ∂E/∂h_T from beyond the window
        for s in range(zs.shape[0] - 1, -1, -1):
            dh = dys[s] + dh_next  # δh_t = dy_t + δz_{t+1} Uᵀ
            dz[s] = dh * self.f.fprime(zs[s], hs[s + 1])  # δz_t = δh_t ⊙ f′(z_t)
            dh_next = dz[s] @ ut
        return dz, dz, (dh_next,)


@register_layer
class LSTM(Recurrent):
    """Long short-term memory, PyTorch's gate order ``i, f, g, o`` in the column blocks of ``W, U, b``.

    Forward, with ``a_t = x_t W + h_{t−1} U + b`` split into four ``(N, H)`` blocks::

        i = σ(a_i)   f = σ(a_f)   g = tanh(a_g)   o = σ(a_o)
        c_t = f ⊙ c_{t−1} + i ⊙ g                  the cell: an additive path through time
        h_t = o ⊙ tanh(c_t)

    BPTT, with ``δh_t = dy_t + δa_{t+1} Uᵀ`` and ``δc_{T+1} f_{T+1} = 0``::

        δo   = δh_t ⊙ tanh(c_t)                   δa_o = δo ⊙ o(1 − o)
        δc_t = δh_t ⊙ o ⊙ (1 − tanh²(c_t)) + δc_{t+1} ⊙ f_{t+1}
        δi   = δc_t ⊙ g                           δa_i = δi ⊙ i(1 − i)
        δf   = δc_t ⊙ c_{t−1}                     δa_f = δf ⊙ f(1 − f)
        δg   = δc_t ⊙ i                           δa_g = δg ⊙ (1 − g²)
        ∂E/∂c_{t−1} = δc_t ⊙ f,   ∂E/∂h_{t−1} = δa_t Uᵀ (+ dy_{t−1})
        ∂E/∂U = Σ_t h_{t−1}ᵀ δa_t,   ∂E/∂W = Σ_t x_tᵀ δa_t,   ∂E/∂b = Σ_t Σ_n δa_t

    Along the cell the gradient is multiplied by ``f`` only (no squashing derivative, no ``U``), which
    is why it survives over many steps where the tanh RNN's vanishes.
    """

    kind = "lstm"
    spec = "lstm:H"
    symbol = "lstm"
    gates = 4
    state_size = 2
    formula = "c_t = f ⊙ c_{t−1} + i ⊙ g,  h_t = o ⊙ tanh(c_t)"
    formula_latex = r"c_t = f \odot c_{t-1} + i \odot g,\ h_t = o \odot \tanh(c_t)"
    derivative = "δc_t = δh_t ⊙ o ⊙ (1 − tanh²c_t) + δc_{t+1} ⊙ f_{t+1},  δa_f = δc_t ⊙ c_{t−1} ⊙ f(1 − f) …"
    derivative_latex = r"\delta c_t = \delta h_t \odot o \odot (1-\tanh^2 c_t) + \delta c_{t+1} \odot f_{t+1}"

    def final_state(self, ctx: Any) -> State:
        _, hs, (cs, _, _) = ctx
        return (hs[-1], cs[-1])

    def _loop(self, xp: Any, a: Any, state0: State) -> tuple[Any, Any]:
        t, n, _ = a.shape
        h = self.hidden
        hs, cs = _empty(xp, (t + 1, n, h), a), _empty(xp, (t + 1, n, h), a)
        gates, tcs = _empty(xp, a.shape, a), _empty(xp, (t, n, h), a)
        hs[0], cs[0] = state0
        u = self.U.value
        for s in range(t):
            z = a[s] + hs[s] @ u  # all four gates' pre-activations, one GEMM
            gs = gates[s]
            gs[:, : 2 * h] = sigmoid(z[:, : 2 * h])  # i, f
            gs[:, 2 * h : 3 * h] = xp.tanh(z[:, 2 * h : 3 * h])  # g
            gs[:, 3 * h :] = sigmoid(z[:, 3 * h :])  # o
            i, f, g, o = gs[:, :h], gs[:, h : 2 * h], gs[:, 2 * h : 3 * h], gs[:, 3 * h :]
            cs[s + 1] = f * cs[s] + i * g  # c_t = f ⊙ c_{t−1} + i ⊙ g
            tcs[s] = xp.tanh(cs[s + 1])
            hs[s + 1] = o * tcs[s]  # h_t = o ⊙ tanh(c_t)
        return hs, (cs, gates, tcs)

    def _loop_backward(self, xp: Any, dys: Any, ctx: Any, dstate: State) -> tuple[Any, Any, State]:
        _, _, (cs, gates, tcs) = ctx
        h = self.hidden
        da = _empty(xp, gates.shape, gates)
        ut = self.U.value.T
        dh_next, dc_next = dstate  # δa_{t+1} Uᵀ and δc_{t+1} ⊙ f_{t+1}
        for s in range(gates.shape[0] - 1, -1, -1):
            gs, d = gates[s], da[s]
            i, f, g, o = gs[:, :h], gs[:, h : 2 * h], gs[:, 2 * h : 3 * h], gs[:, 3 * h :]
            dh = dys[s] + dh_next
            dc = dh * o * (1 - tcs[s] * tcs[s]) + dc_next
            d[:, :h] = dc * g * i * (1 - i)  # δa_i
            d[:, h : 2 * h] = dc * cs[s] * f * (1 - f)  # δa_f
            d[:, 2 * h : 3 * h] = dc * i * (1 - g * g)  # δa_g
            d[:, 3 * h :] = dh * tcs[s] * o * (1 - o)  # δa_o
            dc_next = dc * f
            dh_next = d @ ut
        return da, da, (dh_next, dc_next)


@register_layer
class GRU(Recurrent):
    """Gated recurrent unit in PyTorch's form (the reset gate multiplies ``h U_n + c``, *after* the
    recurrent product), gate order ``r, z, n``; ``b`` is the input bias (PyTorch's ``b_ih``, plus
    ``b_hr, b_hz``), ``c`` the candidate's recurrent bias (PyTorch's ``b_hn``)::

        r = σ(x_t W_r + h_{t−1} U_r + b_r)        z = σ(x_t W_z + h_{t−1} U_z + b_z)
        q = h_{t−1} U_n + c                        n = tanh(x_t W_n + b_n + r ⊙ q)
        h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}

    BPTT, with ``δh_t = dy_t + ∂E/∂h_t`` from step ``t+1``::

        δa_n = δh_t ⊙ (1 − z) ⊙ (1 − n²)
        δa_z = δh_t ⊙ (h_{t−1} − n) ⊙ z(1 − z)
        δa_r = δa_n ⊙ q ⊙ r(1 − r)
        δq   = δa_n ⊙ r                             (what reaches ``U_n`` and ``c``)
        ∂E/∂h_{t−1} = δh_t ⊙ z + [δa_r, δa_z, δq] Uᵀ
        ∂E/∂U = Σ_t h_{t−1}ᵀ [δa_r, δa_z, δq],   ∂E/∂W = Σ_t x_tᵀ [δa_r, δa_z, δa_n],   ∂E/∂c = Σ δq
    """

    kind = "gru"
    spec = "gru:H"
    symbol = "gru"
    gates = 3
    extra_biases = ("c",)
    formula = "h_t = (1 − z) ⊙ n + z ⊙ h_{t−1},  n = tanh(x_t W_n + b_n + r ⊙ (h_{t−1} U_n + c))"
    formula_latex = r"h_t = (1 - z) \odot n + z \odot h_{t-1}"
    derivative = "δa_n = δh ⊙ (1 − z)(1 − n²),  δa_z = δh ⊙ (h_{t−1} − n) z(1 − z),  δa_r = δa_n ⊙ q r(1 − r)"
    derivative_latex = r"\delta a_n = \delta h_t \odot (1-z) \odot (1-n^2)"

    def _loop(self, xp: Any, a: Any, state0: State) -> tuple[Any, Any]:
        t, n, _ = a.shape
        h = self.hidden
        hs, gates, qs = _empty(xp, (t + 1, n, h), a), _empty(xp, a.shape, a), _empty(xp, (t, n, h), a)
        hs[0] = state0[0]
        u, c = self.U.value, self.c.value
        for s in range(t):
            rec = hs[s] @ u  # h_{t−1} [U_r, U_z, U_n], one GEMM
            gs = gates[s]
            gs[:, : 2 * h] = sigmoid(a[s][:, : 2 * h] + rec[:, : 2 * h])  # r, z
            qs[s] = rec[:, 2 * h :] + c  # q = h_{t−1} U_n + c
            gs[:, 2 * h :] = xp.tanh(a[s][:, 2 * h :] + gs[:, :h] * qs[s])  # n
            z, nn = gs[:, h : 2 * h], gs[:, 2 * h :]
            hs[s + 1] = (1 - z) * nn + z * hs[s]
        return hs, (gates, qs)

    def _loop_backward(self, xp: Any, dys: Any, ctx: Any, dstate: State) -> tuple[Any, Any, State]:
        _, hs, (gates, qs) = ctx
        h = self.hidden
        da, dr = _empty(xp, gates.shape, gates), _empty(xp, gates.shape, gates)
        ut = self.U.value.T
        dh_next = dstate[0]
        for s in range(gates.shape[0] - 1, -1, -1):
            gs = gates[s]
            r, z, nn = gs[:, :h], gs[:, h : 2 * h], gs[:, 2 * h :]
            dh = dys[s] + dh_next
            dan = dh * (1 - z) * (1 - nn * nn)
            da[s][:, 2 * h :] = dan
            da[s][:, h : 2 * h] = dh * (hs[s] - nn) * z * (1 - z)  # δa_z
            da[s][:, :h] = dan * qs[s] * r * (1 - r)  # δa_r
            dr[s][:, : 2 * h] = da[s][:, : 2 * h]
            dr[s][:, 2 * h :] = dan * r  # δq
            dh_next = dh * z + dr[s] @ ut
        self.c.grad += xp.sum(dr[:, :, 2 * h :], axis=(0, 1))
        return da, dr, (dh_next,)


def recurrent_layers(layers: Sequence[Layer]) -> list[Recurrent]:
    """The recurrent layers of a stack (what carries state between batches)."""
    return [layer for layer in layers if isinstance(layer, Recurrent)]
