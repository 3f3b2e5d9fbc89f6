"""Principal component analysis, the linear baseline of Hinton & Salakhutdinov 2006.

``x`` (N, D) is centred by its mean ``μ`` (D,); the top ``k`` eigenvectors ``U`` (D, k) of the
covariance ``(x − μ)ᵀ(x − μ)/N`` span the best rank-``k`` affine subspace in squared error, so
the code is ``(x − μ) U`` (N, k) and the reconstruction ``μ + (x − μ) U Uᵀ`` (N, D). Computed in
float64 (``numpy.linalg.eigh`` of the D x D covariance), the same subspace as scikit-learn's
``PCA(k)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from chainrule.errors import ConfigError

__all__ = ["PCA", "squared_error_per_image"]


@dataclass
class PCA:
    mean: np.ndarray
    components: np.ndarray  # (D, k), columns orthonormal

    @classmethod
    def fit(cls, x: np.ndarray, k: int) -> PCA:
        x = np.asarray(x, np.float64)
        if not 1 <= int(k) <= x.shape[1]:
            raise ConfigError(f"PCA needs 1 <= k <= {x.shape[1]} components, got {k}")
        mu = x.mean(axis=0)
        xc = x - mu
        _evals, evecs = np.linalg.eigh(xc.T @ xc / x.shape[0])
        return cls(mu, evecs[:, ::-1][:, : int(k)].copy())

    def encode(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, np.float64) - self.mean) @ self.components

    def decode(self, code: np.ndarray) -> np.ndarray:
        return self.mean + code @ self.components.T

    def reconstruct(self, x: np.ndarray) -> np.ndarray:
        return self.decode(self.encode(x))


def squared_error_per_image(x: np.ndarray, r: np.ndarray) -> float:
    """``mean_n Σ_i (x_ni − r_ni)²``: the paper's and the issue's figure (no ½)."""
    d = np.asarray(x, np.float64) - np.asarray(r, np.float64)
    return float(np.mean(np.sum(d * d, axis=1)))
