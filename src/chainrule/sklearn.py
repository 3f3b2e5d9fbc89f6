"""scikit-learn estimators around chainrule's MLP: :class:`MLPClassifier` and :class:`MLPRegressor`.

They follow scikit-learn's contract (``get_params``/``set_params``, fitted attributes ending in
``_``, ``fit``/``partial_fit``/``predict``/``score``, ``warm_start``), so they work in a
``Pipeline``, ``GridSearchCV`` and ``cross_val_score``, and they pass scikit-learn's own estimator
checks (``tests/test_sklearn.py``). The network, its hand-derived gradients and the training loop
are chainrule's (:func:`chainrule.nn.builders.mlp`, :func:`chainrule.train.fit`).

This room sits beside ``cli`` at the top of the stack (it is a façade over ``jobs``' helpers and the
rooms below), and it is the one module that imports scikit-learn at module level: importing
``chainrule`` does not import it, and ``chainrule.sklearn`` without scikit-learn installed fails with
:class:`~chainrule.errors.MissingDependencyError` naming the extra.

Feature scaling (``scale="standard"`` by default, as the CLI's default for tables) is fitted on the
rows given to the first ``fit``; a regressor also standardises its target and predicts in the
target's units. ``to_model(path)`` saves the network with its scaling and classes in chainrule's
model format, so ``chainrule predict``/``evaluate``/``export`` read it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.errors import MissingDependencyError

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.utils import check_random_state
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import check_is_fitted, validate_data
except ImportError as exc:  # pragma: no cover - the estimators need the sklearn extra
    raise MissingDependencyError("scikit-learn", "chainrule.sklearn", "sklearn") from exc

from chainrule.backend.threads import limit_threads
from chainrule.io.scaling import fit_scaler
from chainrule.io.serialize import save
from chainrule.jobs.tabular import ModelInfo
from chainrule.nn.builders import mlp
from chainrule.nn.model import Sequential
from chainrule.optim import get_optimizer
from chainrule.train import EarlyStopping, fit
from chainrule.train.schedules import make_schedule

__all__ = ["MLPClassifier", "MLPRegressor"]


class _MLP(BaseEstimator):
    """What both estimators share: the parameters, the network, the training call."""

    _task = "classify"

    def __init__(
        self,
        hidden_layer_sizes: tuple[int, ...] = (100,),
        activation: str = "relu",
        optimizer: str = "adam",
        learning_rate: float = 1e-3,
        batch_size: int = 32,
        max_iter: int = 200,
        l2: float = 1e-4,
        scale: str = "standard",
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 10,
        tol: float = 1e-4,
        schedule: str = "none",
        dtype: str = "float64",
        warm_start: bool = False,
        random_state: int | np.random.RandomState | None = None,
        verbose: bool = False,
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.l2 = l2
        self.scale = scale
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.schedule = schedule
        self.dtype = dtype
        self.warm_start = warm_start
        self.random_state = random_state
        self.verbose = verbose

    # -- the pieces ------------------------------------------------------------------------------
    def _sizes(self, n_features: int, n_out: int) -> list[int]:
        hidden = self.hidden_layer_sizes
        hidden = [hidden] if isinstance(hidden, int | np.integer) else list(hidden)
        return [n_features, *(int(h) for h in hidden), n_out]

    def _build(self, n_features: int, n_out: int, seed: int) -> Sequential:
        loss = "squared" if self._task == "regress" else "softmax-ce"
        return mlp(
            self._sizes(n_features, n_out),
            self.activation,
            loss=loss,
            output_activation="identity",
            seed=seed,
            dtype=np.dtype(self.dtype),
        )

    def _train(self, xs: np.ndarray, y: np.ndarray, epochs: int, seed: int) -> None:
        """Train ``self.net_`` on already scaled rows; keeps the optimiser (and its state) across calls."""
        if getattr(self, "_opt", None) is None:
            self._opt = get_optimizer(self.optimizer, self.learning_rate)
        cbs: list[Any] = []
        schedule = make_schedule(self.schedule, epochs)
        if schedule is not None:
            cbs.append(schedule)
        val = self.validation_fraction if self.early_stopping and xs.shape[0] >= 10 else 0.0
        if self.n_iter_no_change and epochs > 1:
            monitor = "val_loss" if val else "loss"
            cbs.append(
                EarlyStopping(patience=int(self.n_iter_no_change), monitor=monitor, min_delta=self.tol)
            )
        with limit_threads(1 if xs.size <= 10**6 else None):  # small tables: one BLAS thread is fastest
            history = self._fit(xs, y, epochs, seed, val, cbs)
        self.n_iter_ = getattr(self, "n_iter_", 0) + len(history.epochs)
        self.loss_ = float(history.final_loss)
        self.loss_curve_ = [*getattr(self, "loss_curve_", []), *history["loss"]]
        self.history_ = history

    def _fit(self, xs: np.ndarray, y: np.ndarray, epochs: int, seed: int, val: float, cbs: list[Any]) -> Any:
        return fit(
            self.net_,
            xs,
            y,
            optimizer=self._opt,
            batch_size=min(int(self.batch_size), xs.shape[0]),
            epochs=epochs,
            l2=self.l2,
            seed=seed,
            validation_split=val,
            callbacks=cbs,
            progress=False,
            verbose=bool(self.verbose),
            task=self._task,
        )

    def _seed(self) -> int:
        return int(check_random_state(self.random_state).randint(0, 2**31 - 1))

    def _features(self, X: Any, reset: bool) -> np.ndarray:
        X = validate_data(self, X, reset=reset, dtype=[np.float64, np.float32])
        return np.asarray(self.scaler_.transform(X), dtype=np.dtype(self.dtype))

    def _scores(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "net_")
        return np.asarray(self.net_.predict_scores(self._features(X, reset=False)), dtype=np.float64)

    def _start(self, X: np.ndarray, n_out: int, first: bool) -> None:
        if first:
            self.scaler_ = fit_scaler(X, self.scale)
            self.net_ = self._build(X.shape[1], n_out, self._seed())
            self._opt = None
            self.n_iter_, self.loss_curve_ = 0, []

    def to_model(self, path: str) -> None:
        """Save the network with its scaling (and classes) as a chainrule model file."""
        check_is_fitted(self, "net_")
        classes = getattr(self, "classes_", None)
        names = None if classes is None else [str(c) for c in classes]
        minfo = ModelInfo(self._task, names, self.scaler_, getattr(self, "target_scaler_", None))
        save(self.net_, path, info={**minfo.to_info(), "n_classes": 1 if names is None else len(names)})

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        return tags


class MLPClassifier(ClassifierMixin, _MLP):
    """A multilayer perceptron classifier (softmax cross-entropy), scikit-learn style.

    Fitted attributes: ``classes_``, ``n_features_in_``, ``net_`` (the chainrule network),
    ``scaler_``, ``n_iter_``, ``loss_``, ``loss_curve_``, ``history_``."""

    _task = "classify"

    def fit(self, X: Any, y: Any) -> MLPClassifier:
        first = not (self.warm_start and hasattr(self, "net_"))
        X, y = validate_data(self, X, y, reset=first, dtype=[np.float64, np.float32])
        check_classification_targets(y)
        if first:
            self.classes_ = np.unique(y)
        self._start(X, max(2, len(self.classes_)), first)
        self._train(self._scaled(X), self._encode(y), int(self.max_iter), self._seed())
        return self

    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> MLPClassifier:
        """One epoch on ``(X, y)``; the first call needs ``classes`` (every label that will occur)."""
        first = not hasattr(self, "net_")
        X, y = validate_data(self, X, y, reset=first, dtype=[np.float64, np.float32])
        check_classification_targets(y)
        if first:
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit")
            self.classes_ = np.unique(np.asarray(classes))
        self._start(X, max(2, len(self.classes_)), first)
        self._train(self._scaled(X), self._encode(y), 1, self._seed() + getattr(self, "n_iter_", 0))
        return self

    def _scaled(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.scaler_.transform(X), dtype=np.dtype(self.dtype))

    def _encode(self, y: np.ndarray) -> np.ndarray:
        idx = np.searchsorted(self.classes_, y)
        idx = np.clip(idx, 0, len(self.classes_) - 1)
        if not np.all(self.classes_[idx] == y):
            raise ValueError(f"y has labels not in classes_ {self.classes_.tolist()}")
        return idx.astype(np.int64)

    def predict_proba(self, X: Any) -> np.ndarray:
        scores = self._scores(X)
        z = scores - scores.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        if len(self.classes_) == 1:
            return np.ones((p.shape[0], 1))
        return p

    def predict(self, X: Any) -> np.ndarray:
        scores = self._scores(X)
        if len(self.classes_) == 1:
            return np.full(scores.shape[0], self.classes_[0])
        return self.classes_[np.argmax(scores, axis=1)]


class MLPRegressor(RegressorMixin, _MLP):
    """A multilayer perceptron regressor (identity output, squared error), scikit-learn style.

    The target is standardised for training (``target_scaler_``) and predictions are mapped back."""

    _task = "regress"

    def fit(self, X: Any, y: Any) -> MLPRegressor:
        first = not (self.warm_start and hasattr(self, "net_"))
        X, y = validate_data(self, X, y, reset=first, y_numeric=True, dtype=[np.float64, np.float32])
        self._start(X, 1, first)
        if first:
            self.target_scaler_ = fit_scaler(np.asarray(y, dtype=np.float64)[:, None], "standard")
        self._train(self._scaled(X), self._target(y), int(self.max_iter), self._seed())
        return self

    def partial_fit(self, X: Any, y: Any) -> MLPRegressor:
        """One epoch on ``(X, y)`` (the first call fits the scalers on these rows)."""
        first = not hasattr(self, "net_")
        X, y = validate_data(self, X, y, reset=first, y_numeric=True, dtype=[np.float64, np.float32])
        self._start(X, 1, first)
        if first:
            self.target_scaler_ = fit_scaler(np.asarray(y, dtype=np.float64)[:, None], "standard")
        self._train(self._scaled(X), self._target(y), 1, self._seed() + getattr(self, "n_iter_", 0))
        return self

    def _scaled(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.scaler_.transform(X), dtype=np.dtype(self.dtype))

    def _target(self, y: np.ndarray) -> np.ndarray:
        ys = self.target_scaler_.transform(np.asarray(y, dtype=np.float64)[:, None])[:, 0]
        return ys.astype(np.dtype(self.dtype))

    def predict(self, X: Any) -> np.ndarray:
        scores = self._scores(X)
        return self.target_scaler_.inverse(scores)[:, 0]
