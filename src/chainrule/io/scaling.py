"""Feature (and regression-target) scaling, fitted on training rows only and stored with the model.

A :class:`Scaler` is the affine map applied column by column before the first layer::

    x'_ij = (x_ij − shift_j) · factor_j        x: (N, D), shift, factor: (D,)

* ``standard``: ``shift = mean``, ``factor = 1 / std`` (a constant column gets ``factor = 1``);
* ``minmax``: ``shift = min``, ``factor = 1 / (max − min)`` (a constant column gets ``factor = 1``);
* ``center``: ``shift = mean``, ``factor = 1`` (the columns keep their units and relative sizes);
* ``none``: the identity (``shift = 0``, ``factor = 1``).

It is saved in the model file's ``info`` as plain JSON (``{"kind": str, "shift": [float],
"factor": [float]}``), so ``evaluate``, ``predict``, ``export`` and the estimators apply exactly
what training applied. Values are kept in float64 and applied in the data's dtype.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from chainrule.errors import ConfigError, ModelFileError

__all__ = ["SCALES", "Scaler", "auto_scale", "fit_scaler"]

SCALES = ("standard", "minmax", "center", "none")


@dataclass(frozen=True)
class Scaler:
    """``x' = (x − shift) · factor`` per column (``shift``/``factor`` are float64 ``(D,)``)."""

    kind: str
    shift: np.ndarray
    factor: np.ndarray

    def transform(self, x: np.ndarray) -> np.ndarray:
        """The scaled copy of ``x`` ``(N, D)`` (or ``(N, *sample_shape)``, flattened per sample), in ``x``'s
        float dtype (float64 for integer input). The input is never modified."""
        x = np.asarray(x)
        dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float64)
        if self.kind == "none":
            return x.astype(dtype, copy=True)
        flat = x.reshape(x.shape[0], -1)
        if flat.shape[1] != self.shift.shape[0]:
            raise ConfigError(f"the scaler was fitted on {self.shift.shape[0]} features, got {flat.shape[1]}")
        out = (flat - self.shift.astype(dtype)) * self.factor.astype(dtype)
        return out.astype(dtype, copy=False).reshape(x.shape)

    def inverse(self, z: np.ndarray) -> np.ndarray:
        """``x = z / factor + shift`` (used to map scaled regression outputs back to targets)."""
        z = np.asarray(z)
        if self.kind == "none":
            return z.copy()
        return (z / self.factor.astype(z.dtype) + self.shift.astype(z.dtype)).astype(z.dtype, copy=False)

    def to_info(self) -> dict[str, Any]:
        """The JSON form stored in a model file's ``info``."""
        return {"kind": self.kind, "shift": self.shift.tolist(), "factor": self.factor.tolist()}

    @classmethod
    def from_info(cls, obj: Any, n_features: int | None = None, where: str = "model") -> Scaler:
        """Read (and check) the JSON form; ``None`` (an older model) is the identity."""
        if obj is None:
            return identity(n_features or 0)
        if not isinstance(obj, dict) or obj.get("kind") not in SCALES:
            raise ModelFileError(f"{where}: the stored feature scaler is malformed")
        try:
            shift = np.asarray(obj.get("shift", []), dtype=np.float64).reshape(-1)
            factor = np.asarray(obj.get("factor", []), dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise ModelFileError(f"{where}: the stored feature scaler is not numeric") from None
        if shift.shape != factor.shape or not (np.all(np.isfinite(shift)) and np.all(np.isfinite(factor))):
            raise ModelFileError(f"{where}: the stored feature scaler has bad shapes or non-finite values")
        if n_features is not None and obj["kind"] != "none" and shift.shape[0] != n_features:
            raise ModelFileError(
                f"{where}: the stored feature scaler has {shift.shape[0]} columns, the model {n_features} inputs"
            )
        return cls(obj["kind"], shift, factor)


def identity(n_features: int) -> Scaler:
    return Scaler("none", np.zeros(n_features), np.ones(n_features))


def auto_scale(x: np.ndarray) -> str:
    """``--scale auto`` for a table: ``"none"`` when the columns already share one moderate scale,
    else ``"standard"``.

    "One moderate scale": every non-constant column has a standard deviation in ``[0.1, 10]`` and a
    mean within ``±10``, and the largest deviation is at most 10× the smallest. Such columns are in
    units the user chose for them (iris: four lengths in centimetres), and their relative sizes carry
    information: dividing by each deviation would blow a narrow, noisy column (iris's sepal width)
    up to the weight of the widest one. They are left as they are (measured on iris over five
    seeds: unscaled 0.960, centred 0.947, standardised 0.933). Anything else (wine's proline in the thousands beside hue near 1, diabetes' pre-scaled columns
    of deviation 0.05) is standardised, because unscaled it diverges or crawls."""
    flat = np.asarray(x, dtype=np.float64).reshape(np.shape(x)[0], -1)
    if flat.shape[0] < 2:
        return "standard"
    std, mean = flat.std(axis=0), flat.mean(axis=0)
    live = std > 0
    if not np.any(live):
        return "none"
    s, m = std[live], mean[live]
    moderate = s.min() >= 0.1 and s.max() <= 10 and np.abs(m).max() <= 10 and s.max() <= 10 * s.min()
    return "none" if moderate else "standard"


def fit_scaler(x: np.ndarray, kind: str = "standard") -> Scaler:
    """Fit ``kind`` on the rows of ``x`` ``(N, ...)`` (each sample flattened to one row)."""
    if kind not in SCALES:
        raise ConfigError(f"unknown scaling {kind!r}; choose {', '.join(SCALES)}")
    flat = np.asarray(x, dtype=np.float64).reshape(np.shape(x)[0], -1)
    if kind == "none" or flat.shape[0] == 0:
        return identity(flat.shape[1])
    if kind == "center":
        return Scaler(kind, flat.mean(axis=0), np.ones(flat.shape[1]))
    if kind == "standard":
        shift, spread = flat.mean(axis=0), flat.std(axis=0)
    else:
        shift, spread = flat.min(axis=0), np.ptp(flat, axis=0)
    # a (near-)constant column is left unscaled rather than blown up
    tiny = spread <= 1e-12 * np.maximum(1.0, np.abs(shift))
    factor = np.where(tiny, 1.0, 1.0 / np.where(tiny, 1.0, spread))
    if not (np.all(np.isfinite(factor)) and math.isfinite(float(np.sum(shift)))):
        raise ConfigError("cannot scale these features: their spread overflows float64")
    return Scaler(kind, shift, factor)
