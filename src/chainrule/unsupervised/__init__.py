"""Models that are not trained by backpropagation alone: restricted Boltzmann machines (trained by
contrastive divergence), annealed importance sampling for their partition function, and greedy
layer-wise pre-training, which stacks RBMs or autoencoders and unrolls them into a network that
``train`` fine-tunes by backprop (seed 000: "pre-training 可以获得一个较好的接近局部最优解的初始迭代点").

This room sits above ``train`` (pre-training calls :func:`~chainrule.train.fit` for autoencoder
layers and hands the unrolled :class:`~chainrule.nn.model.Sequential` to it) and below ``io``.
"""

from chainrule.unsupervised.ais import AISResult, ais_log_partition
from chainrule.unsupervised.pretrain import (
    PretrainedStack,
    pretrain_autoencoders,
    pretrain_rbms,
    unroll_autoencoder,
    unroll_classifier,
)
from chainrule.unsupervised.rbm import RBM, CDTrainer, exact_log_partition

__all__ = [
    "RBM",
    "AISResult",
    "CDTrainer",
    "PretrainedStack",
    "ais_log_partition",
    "exact_log_partition",
    "pretrain_autoencoders",
    "pretrain_rbms",
    "unroll_autoencoder",
    "unroll_classifier",
]
