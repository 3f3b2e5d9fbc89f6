"""Greedy layer-wise pre-training (Hinton, Osindero & Teh 2006; Bengio et al. 2007) and unrolling.

Train one layer at a time, bottom up, each on the codes of the layer below:

* **RBMs** (a deep belief net): layer ``l`` is an RBM ``s_{l−1} x s_l`` trained by CD on
  ``E[h^{l−1} | ·]``; the top one may have Gaussian (linear) hidden units, the 30-D code of
  Hinton & Salakhutdinov 2006.
* **Autoencoders**: layer ``l`` is a one-hidden-layer autoencoder ``s_{l−1} → s_l → s_{l−1}``
  trained by backprop (:func:`chainrule.train.fit`) to reconstruct its input.

Either way each layer leaves an encoder ``(W_l (s_{l−1}, s_l), c_l)`` and a decoder bias ``b_l``
(and, for autoencoders, a decoder weight). *Unrolling* turns the stack into a network that backprop
fine-tunes: a deep autoencoder (encoders up, then the transposed weights down) or a classifier
(encoders, then a fresh softmax layer).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from chainrule.errors import ConfigError
from chainrule.nn.autoencoder import Autoencoder, check_encoder_sizes, deep_autoencoder
from chainrule.nn.builders import mlp
from chainrule.nn.layers import Dense, TiedDense
from chainrule.nn.model import Sequential
from chainrule.train import fit
from chainrule.unsupervised.rbm import RBM, CDSettings, CDTrainer

__all__ = [
    "PretrainedLayer",
    "PretrainedStack",
    "pretrain_autoencoders",
    "pretrain_rbms",
    "unroll_autoencoder",
    "unroll_classifier",
]

#: ``progress(layer, epoch, seconds, reconstruction_error)`` after each pre-training epoch
Progress = Callable[[int, int, float, float], None] | None


@dataclass
class PretrainedLayer:
    """One trained layer: encoder ``W (d_in, d_out)``, hidden bias ``c``, decoder bias ``b``,
    optional decoder weight ``W_dec (d_out, d_in)`` (autoencoders), and whether the code is linear."""

    W: np.ndarray
    c: np.ndarray
    b: np.ndarray
    W_dec: np.ndarray | None = None
    linear: bool = False
    seconds: float = 0.0
    error: float = float("nan")


@dataclass
class PretrainedStack:
    kind: str  # "rbm" or "autoencoder"
    layers: list[PretrainedLayer] = field(default_factory=list)

    @property
    def sizes(self) -> list[int]:
        return [self.layers[0].W.shape[0], *(lay.W.shape[1] for lay in self.layers)]

    @property
    def seconds(self) -> float:
        return float(sum(lay.seconds for lay in self.layers))


def pretrain_rbms(
    x: np.ndarray,
    sizes: Sequence[int],
    *,
    epochs: int = 10,
    lr: float = 0.1,
    top_lr: float = 0.001,
    linear_top: bool = True,
    k: int = 1,
    batch_size: int = 100,
    momentum: tuple[float, float, int] = (0.5, 0.9, 5),
    weight_decay: float = 2e-4,
    seed: int = 0,
    progress: Progress = None,
) -> PretrainedStack:
    """A DBN ``sizes[0] x sizes[1] x …`` trained greedily by CD-``k`` (Hinton & Salakhutdinov's
    recipe: momentum ``momentum[0]`` for the first ``momentum[2]`` epochs, then ``momentum[1]``;
    weight decay; mean-field visible reconstructions; a Gaussian-hidden top RBM at ``top_lr``).
    ``x`` are values in [0, 1] (MNIST intensities are used as probabilities, as in the paper)."""
    s = [int(v) for v in sizes]
    if len(s) < 2:
        raise ConfigError(f"a stack needs at least two sizes, got {s}")
    if int(epochs) < 1:
        raise ConfigError(f"pre-training epochs must be at least 1, got {epochs}")
    data = np.ascontiguousarray(x, dtype=np.float32)
    stack = PretrainedStack("rbm")
    for li, (d_in, d_out) in enumerate(itertools.pairwise(s)):
        top = li == len(s) - 2 and linear_top
        rbm = RBM(d_in, d_out, hidden="gaussian" if top else "bernoulli", seed=seed + li)
        st = CDSettings(k=k, lr=top_lr if top else lr, batch_size=batch_size, momentum=momentum[0],
                        weight_decay=weight_decay, sample_visible=False)
        trainer = CDTrainer(rbm, st, seed=seed + li)
        layer = PretrainedLayer(rbm.W, rbm.c, rbm.b, linear=top)
        for epoch in range(1, int(epochs) + 1):
            st.momentum = momentum[0] if epoch <= momentum[2] else momentum[1]
            t0 = time.perf_counter()
            trainer.run_epoch(data)
            dt = time.perf_counter() - t0
            layer.seconds += dt
            layer.error = rbm.reconstruction_error(data[:2000])
            if progress is not None:
                progress(li + 1, epoch, dt, layer.error)
        stack.layers.append(layer)
        data = np.ascontiguousarray(rbm.hidden_mean(data))
    return stack


def pretrain_autoencoders(
    x: np.ndarray,
    sizes: Sequence[int],
    *,
    epochs: int = 10,
    lr: float = 1e-3,
    optimizer: str = "adam",
    batch_size: int = 100,
    noise: float = 0.0,
    linear_top: bool = True,
    seed: int = 0,
    progress: Progress = None,
) -> PretrainedStack:
    """Stacked (optionally denoising) autoencoders: layer ``l`` is ``s_{l−1} → s_l → s_{l−1}``
    with a sigmoid code (linear on top when ``linear_top``) and a cross-entropy reconstruction,
    trained by :func:`~chainrule.train.fit`."""
    s = [int(v) for v in sizes]
    data = np.ascontiguousarray(x, dtype=np.float32)
    stack = PretrainedStack("autoencoder")
    for li, (d_in, d_out) in enumerate(itertools.pairwise(s)):
        top = li == len(s) - 2 and linear_top
        ae = deep_autoencoder([d_in, d_out], code_activation="identity" if top else "sigmoid",
                              noise=noise, seed=seed + li, loss="bce")
        t0 = time.perf_counter()
        hist = fit(ae, data, data, optimizer=optimizer, lr=lr, batch_size=batch_size, epochs=int(epochs),
                   seed=seed + li, progress=False)
        enc, dec = ae.layers[ae.code_end - (1 if top else 2)], ae.layers[ae.code_end]
        assert isinstance(enc, Dense) and isinstance(dec, Dense)
        layer = PretrainedLayer(enc.W.value.copy(), enc.b.value.copy(), dec.b.value.copy(),
                                W_dec=dec.W.value.copy(), linear=top, seconds=time.perf_counter() - t0,
                                error=float(hist.epochs[-1]["loss"]))
        if progress is not None:
            progress(li + 1, int(epochs), layer.seconds, layer.error)
        stack.layers.append(layer)
        data = np.ascontiguousarray(ae.encode(data))
    return stack


def unroll_autoencoder(stack: PretrainedStack, *, tied: bool = False, loss: str = "bce") -> Autoencoder:
    """The deep autoencoder of ``stack``: encoder ``l`` gets ``(W_l, c_l)``, decoder ``l`` gets
    ``(W_lᵀ, b_l)`` (RBMs, or tied) or the autoencoder's own decoder weight."""
    sizes = check_encoder_sizes(stack.sizes)
    code_act = "identity" if stack.layers[-1].linear else "sigmoid"
    net = deep_autoencoder(sizes, tied=tied, loss=loss, code_activation=code_act, seed=0)
    dense = [layer for layer in net.layers if isinstance(layer, Dense | TiedDense)]
    L = len(stack.layers)
    for lay, enc in zip(stack.layers, dense[:L], strict=True):
        enc.W.value[...] = lay.W
        enc.b.value[...] = lay.c  # type: ignore[union-attr]
    for lay, dec in zip(reversed(stack.layers), dense[L:], strict=True):
        if isinstance(dec, TiedDense):
            dec.c.value[...] = lay.b
        else:
            dec.W.value[...] = lay.W.T if lay.W_dec is None else lay.W_dec
            dec.b.value[...] = lay.b
    return net


def unroll_classifier(stack: PretrainedStack, n_classes: int, *, seed: int = 0) -> Sequential:
    """A sigmoid classifier ``sizes → n_classes`` (softmax cross-entropy) whose hidden layers start at
    the stack's encoders and whose output layer is freshly initialised."""
    if any(lay.linear for lay in stack.layers):
        raise ConfigError("a classifier unrolls a stack of sigmoid layers (pre-train without a linear top)")
    net = mlp([*stack.sizes, int(n_classes)], "sigmoid", loss="softmax-ce", seed=seed)
    dense = [layer for layer in net.layers if isinstance(layer, Dense)]
    for lay, d in zip(stack.layers, dense, strict=False):
        d.W.value[...] = lay.W
        d.b.value[...] = lay.c
    return net
