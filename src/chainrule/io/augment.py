"""Training-set expansion: Nielsen's 1-pixel shifts (``expand_mnist.py``, chapter 6).

Each image is kept and copied four times, shifted by one pixel up, down, left and right (the
pixel shifted out is dropped, the new row or column is zero), which multiplies the training set by
five. Test data is never expanded.
"""

from __future__ import annotations

import math

import numpy as np

from chainrule.errors import ConfigError, DataError

__all__ = ["AUGMENTATIONS", "augment", "shift_expand"]

AUGMENTATIONS = ("shift",)


def shift_expand(x: np.ndarray, y: np.ndarray, image_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` and four 1-pixel shifts of every image: ``5·N`` samples in ``x``'s layout.

    ``x`` holds ``N`` samples of ``prod(image_shape)`` values (flat rows or images); ``image_shape``
    is ``(H, W)`` or ``(C, H, W)``. The result is ``[x; up; down; left; right]``, labels repeated.
    """
    n = x.shape[0]
    if math.prod(x.shape[1:]) != math.prod(image_shape) or len(image_shape) not in (2, 3):
        raise DataError(
            f"--augment shift: samples of shape {x.shape[1:]} do not factor into images {tuple(image_shape)}"
        )
    imgs = x.reshape(n, -1, *image_shape[-2:])  # (N, C, H, W), a view
    out = np.zeros((5, *imgs.shape), dtype=x.dtype)
    out[0] = imgs
    out[1, :, :, :-1, :] = imgs[:, :, 1:, :]  # up
    out[2, :, :, 1:, :] = imgs[:, :, :-1, :]  # down
    out[3, :, :, :, :-1] = imgs[:, :, :, 1:]  # left
    out[4, :, :, :, 1:] = imgs[:, :, :, :-1]  # right
    return out.reshape(5 * n, *x.shape[1:]), np.tile(y, 5)


def augment(
    name: str | None, x: np.ndarray, y: np.ndarray, image_shape: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Apply the named expansion (``None``: none) to a training set."""
    if name is None:
        return x, y
    if name == "shift":
        return shift_expand(x, y, image_shape)
    raise ConfigError(f"unknown augmentation {name!r}; choose {', '.join(AUGMENTATIONS)}")
