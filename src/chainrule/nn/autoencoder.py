"""Autoencoders: a deep autoencoder built from encoder sizes (tied or untied decoder), masking noise
(denoising) and the UFLDL sparse autoencoder's KL sparsity penalty, with ``encode``/``decode``.

An autoencoder is a :class:`~chainrule.nn.model.Sequential` whose target is its input. For
encoder sizes ``D = s_0, s_1, …, s_L`` (``s_L`` the code) it is ::

    x (N, D) → [noise] → Dense(s_0, s_1) σ → … → Dense(s_{L−1}, s_L) code_act → [sparsity]
             → Dense(s_L, s_{L−1}) σ → … → Dense(s_1, s_0) → output

Tied: decoder layer ``l`` is a :class:`~chainrule.nn.layers.dense.TiedDense` on encoder layer
``l``'s own ``W`` (``x Wᵀ + c``); the weight's gradient collects both uses. The reconstruction loss
is an ordinary registered loss: ``bce`` (cross-entropy, fused with the output sigmoid: the decoder's
last layer outputs logits) or ``squared`` (the decoder ends in a sigmoid). Both are already in
:mod:`chainrule.nn.losses`, so the registry's gradient and PyTorch checks cover them.

The two layers here are parameter-free and deliberately *not* registered in ``LAYERS``: the
registry's tests check ``backward`` against the derivative of ``forward`` alone, and neither layer
fits that — :class:`MaskingNoise` draws a fresh mask per call, and :class:`KLSparsity` adds the
gradient of a penalty that is not part of its output. Their own tests check them against the
penalised objective (:func:`penalty`) and PyTorch.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from chainrule.backend import namespace
from chainrule.errors import ConfigError
from chainrule.nn.layer import LAYERS, Layer
from chainrule.nn.layers import Dense, TiedDense
from chainrule.nn.losses import get_loss
from chainrule.nn.model import Sequential

__all__ = ["Autoencoder", "KLSparsity", "MaskingNoise", "check_encoder_sizes", "deep_autoencoder", "penalty"]


class MaskingNoise(Layer):
    """Denoising corruption (Vincent et al. 2008): in training mode each input unit is set to zero
    with probability ``p``, ``y = x ⊙ m`` with ``m_ni ~ Bernoulli(1 − p)`` (no rescaling: the target
    is the clean ``x``); in evaluation mode ``y = x``. ``∂E/∂x = ∂E/∂y ⊙ m``  (all (N, D))."""

    kind = "masking_noise"
    formula = "y = x ⊙ m,  m ~ Bernoulli(1 − p)"
    derivative = "∂E/∂x = ∂E/∂y ⊙ m"

    def __init__(self, p: float = 0.25, seed: int | None = 0) -> None:
        super().__init__()
        if not 0.0 <= float(p) < 1.0:
            raise ConfigError(f"masking noise level must be in [0, 1), got {p}")
        self.p, self.seed = float(p), seed
        self.rng = np.random.default_rng(seed)

    def forward(self, x: Any) -> tuple[Any, Any]:
        if not self.training or self.p == 0.0:
            return x, None
        keep = namespace(x).asarray(self.rng.random(x.shape) >= self.p)
        mask = keep.astype(x.dtype) if isinstance(x, np.ndarray) else namespace(x).astype(keep, x.dtype)
        return x * mask, mask

    def backward(self, dy: Any, ctx: Any, *, need_dx: bool = True) -> Any:
        return dy if ctx is None else dy * ctx

    def config(self) -> dict[str, Any]:
        return {"type": self.kind, "p": self.p, "seed": self.seed}

    def extra_repr(self) -> str:
        return f"p={self.p}"


class KLSparsity(Layer):
    """The sparse autoencoder's penalty (UFLDL notes, which seed 001 follows), on sigmoid
    activations ``a`` (N, H) of a hidden layer. Forward is the identity, ``y = a``; the penalty is ::

        P = β Σ_j KL(ρ ‖ ρ̂_j) = β Σ_j [ ρ log(ρ/ρ̂_j) + (1 − ρ) log((1 − ρ)/(1 − ρ̂_j)) ]
        ρ̂_j = (1/N) Σ_n a_nj                                          (the mean activation, (H,))

    added to the reconstruction cost ``E``. Its gradient by the chain rule through ``ρ̂_j``::

        ∂P/∂ρ̂_j  = β ( −ρ/ρ̂_j + (1 − ρ)/(1 − ρ̂_j) )
        ∂ρ̂_j/∂a_nj = 1/N
        ∂P/∂a_nj  = (β/N) ( −ρ/ρ̂_j + (1 − ρ)/(1 − ρ̂_j) )             (same for every row n)

    so ``backward`` returns ``dy + ∂P/∂a`` (N, H): the UFLDL rule
    ``δ² = (W²ᵀδ³ + β(−ρ/ρ̂ + (1−ρ)/(1−ρ̂))) ⊙ f'(z²)`` with the seeds' per-sample ``1/m`` folded
    into the mean. The following ``σ`` layer's backward then multiplies by ``f'``; this layer sits
    *after* the sigmoid. ``penalty(ctx)`` is ``P`` for one forward pass (``ρ̂`` is clipped to
    ``[1e-12, 1 − 1e-12]`` only to keep the logarithms finite)."""

    kind = "kl_sparsity"
    formula = "y = a;  P = β Σ_j KL(ρ ‖ mean_n a_nj)"
    derivative = "∂P/∂a_nj = (β/N)(−ρ/ρ̂_j + (1 − ρ)/(1 − ρ̂_j))"

    def __init__(self, rho: float = 0.05, beta: float = 3.0) -> None:
        super().__init__()
        if not 0.0 < float(rho) < 1.0 or float(beta) < 0.0 or not math.isfinite(float(beta)):
            raise ConfigError(f"sparsity target rho must be in (0, 1) and beta >= 0, got {rho}, {beta}")
        self.rho, self.beta = float(rho), float(beta)

    def _rho_hat(self, a: Any) -> Any:
        xp = namespace(a)
        return xp.clip(xp.mean(a, axis=0), 1e-12, 1.0 - 1e-12)

    def forward(self, x: Any) -> tuple[Any, Any]:
        return x, x

    def penalty(self, ctx: Any) -> Any:
        xp, r, rh = namespace(ctx), self.rho, self._rho_hat(ctx)
        return self.beta * xp.sum(r * xp.log(r / rh) + (1.0 - r) * xp.log((1.0 - r) / (1.0 - rh)))

    def backward(self, dy: Any, ctx: Any, *, need_dx: bool = True) -> Any:
        rh, n = self._rho_hat(ctx), ctx.shape[0]
        return dy + (self.beta / n) * (-self.rho / rh + (1.0 - self.rho) / (1.0 - rh))

    def config(self) -> dict[str, Any]:
        return {"type": self.kind, "rho": self.rho, "beta": self.beta}

    def extra_repr(self) -> str:
        return f"rho={self.rho}, beta={self.beta}"


def penalty(net: Sequential) -> float:
    """The sum of the penalties of the layers on ``net``'s tape (its last forward pass): what
    :class:`KLSparsity` adds to the objective whose gradient ``net.backward`` computes."""
    total = 0.0
    for entry in net.tape:
        fn = getattr(entry.layer, "penalty", None)
        if fn is not None:
            total += float(fn(entry.ctx))
    return total


def check_encoder_sizes(sizes: Sequence[int]) -> list[int]:
    """Encoder sizes ``input, …, code``: at least two positive integers, the code smaller than
    every other size (784-1000-500-250-30 is fine: it widens first, then shrinks to the code)."""
    s = [int(v) for v in sizes]
    if len(s) < 2 or min(s) < 1:
        raise ConfigError(f"encoder sizes must be at least two positive integers (input,...,code), got {s}")
    if s[-1] >= min(s[:-1]):
        raise ConfigError(
            f"encoder sizes {','.join(map(str, s))} do not shrink to a code: the last size ({s[-1]}) "
            f"must be smaller than every other"
        )
    return s


class Autoencoder(Sequential):
    """A :class:`Sequential` that knows where its code is: ``layers[:code_end]`` encode,
    ``layers[code_end:]`` decode. ``encode``/``decode``/``reconstruct`` run in evaluation mode
    (no noise) without touching gradients; ``reconstruct`` maps logits through the loss's fused
    sigmoid, so its output is in the data's units."""

    def __init__(self, layers: Sequence[Layer], code_end: int, **kwargs: Any) -> None:
        super().__init__(layers, **kwargs)
        if not 0 < code_end < len(self.layers):
            raise ConfigError(f"code_end must split the layers, got {code_end} of {len(self.layers)}")
        self.code_end = int(code_end)

    def _run(self, layers: Sequence[Layer], x: Any, batch_size: int) -> Any:
        was = self.training
        self.eval()
        try:
            parts = []
            for i in range(0, x.shape[0], batch_size):
                h = x[i : i + batch_size]
                for layer in layers:
                    h = layer.forward(h)[0]
                parts.append(h)
        finally:
            self.train(was)
        return namespace(x).concat(parts, axis=0)

    def encode(self, x: Any, batch_size: int = 4096) -> Any:
        """The code ``(N, s_L)``."""
        self.check_input(x)
        return self._run(self.layers[: self.code_end], x, batch_size)

    def decode(self, code: Any, batch_size: int = 4096) -> Any:
        """Reconstructions ``(N, D)`` in the data's units (the loss's output activation applied)."""
        out = self._run(self.layers[self.code_end :], code, batch_size)
        return self.loss.probabilities(out) if self.loss is not None else out

    def reconstruct(self, x: Any, batch_size: int = 4096) -> Any:
        return self.decode(self.encode(x, batch_size), batch_size)


def deep_autoencoder(
    sizes: Sequence[int],
    *,
    tied: bool = False,
    loss: str = "bce",
    activation: str = "sigmoid",
    code_activation: str = "identity",
    noise: float = 0.0,
    sparsity: tuple[float, float] | None = None,
    seed: int | None = 0,
    dtype: Any = np.float32,
) -> Autoencoder:
    """The autoencoder of the module docstring for encoder ``sizes`` (input first, code last).

    ``loss``: ``"bce"`` (decoder outputs logits) or ``"squared"`` (decoder ends in a sigmoid);
    ``code_activation``: ``"identity"`` (Hinton & Salakhutdinov's linear code) or any registered
    activation; ``noise``: masking probability (0 = none); ``sparsity``: ``(ρ, β)`` puts a
    :class:`KLSparsity` after the code (needs a sigmoid code)."""
    s = check_encoder_sizes(sizes)
    loss_obj = get_loss(loss)
    if loss_obj.name not in ("bce", "squared"):
        raise ConfigError(f"an autoencoder reconstructs with 'bce' or 'squared', not {loss_obj.name!r}")
    for act in (activation, code_activation):
        if act != "identity" and (act not in LAYERS or not LAYERS[act].elementwise):
            raise ConfigError(f"unknown activation {act!r}")
    if sparsity is not None and code_activation != "sigmoid":
        raise ConfigError("the KL sparsity penalty needs a sigmoid code (--code-activation sigmoid)")
    rng = np.random.default_rng(seed)
    layers: list[Layer] = [MaskingNoise(noise, seed=seed)] if noise > 0 else []
    encoders: list[tuple[int, Dense]] = []
    pairs = list(itertools.pairwise(s))
    for i, (d_in, d_out) in enumerate(pairs):
        enc = Dense(d_in, d_out, rng=rng, dtype=dtype)
        encoders.append((len(layers), enc))
        layers.append(enc)
        act = code_activation if i == len(pairs) - 1 else activation
        if act != "identity":
            layers.append(LAYERS[act]())
    if sparsity is not None:
        layers.append(KLSparsity(*sparsity))
    code_end = len(layers)
    for i, (idx, enc) in enumerate(reversed(encoders)):
        layers.append(
            TiedDense(enc, tied_to=idx) if tied else Dense(enc.out_features, enc.in_features, rng=rng, dtype=dtype)
        )
        last = i == len(encoders) - 1
        if not last:
            layers.append(LAYERS[activation]())
        elif loss_obj.output_activation != "identity":
            layers.append(LAYERS[loss_obj.output_activation]())
    return Autoencoder(layers, code_end, loss=loss_obj, input_dim=s[0])
