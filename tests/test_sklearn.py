"""Issue 11, acceptance 1: the estimators pass scikit-learn's own estimator checks, and work in a
Pipeline, GridSearchCV and cross_val_score."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.datasets import load_diabetes, load_iris
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from chainrule.sklearn import MLPClassifier, MLPRegressor

#: checks that may not pass, each with its reason (empty: every check must pass)
EXPECTED_FAILED: dict[str, str] = {}


@parametrize_with_checks(
    [MLPClassifier(max_iter=50, random_state=0), MLPRegressor(max_iter=50, random_state=0)],
    expected_failed_checks=lambda est: EXPECTED_FAILED,
)
def test_sklearn_estimator_checks(estimator, check) -> None:
    check(estimator)


def test_pipeline_gridsearch_cross_val() -> None:
    x, y = load_iris(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), MLPClassifier(scale="none", max_iter=60, random_state=0))
    scores = cross_val_score(pipe, x, y, cv=3)
    assert scores.shape == (3,) and scores.mean() > 0.85
    grid = GridSearchCV(
        pipe,
        {"mlpclassifier__learning_rate": [1e-3, 1e-2], "mlpclassifier__hidden_layer_sizes": [(8,), (32,)]},
        cv=3,
    )
    grid.fit(x, y)
    assert set(grid.best_params_) == {"mlpclassifier__learning_rate", "mlpclassifier__hidden_layer_sizes"}
    assert grid.best_score_ > 0.85 and len(grid.cv_results_["params"]) == 4


def test_regressor_r2_and_string_classes() -> None:
    x, y = load_diabetes(return_X_y=True)
    reg = MLPRegressor(random_state=0, early_stopping=True).fit(x[:350], y[:350])
    assert reg.score(x[350:], y[350:]) > 0.3  # MLPRegressor() defaults reach < 0 here (unscaled target)
    xi, yi = load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"])[yi]
    clf = MLPClassifier(random_state=0, max_iter=100).fit(xi, names)
    assert list(clf.classes_) == ["setosa", "versicolor", "virginica"]
    assert set(clf.predict(xi)) <= set(clf.classes_) and clf.score(xi, names) > 0.9
    proba = clf.predict_proba(xi)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-12)


def test_partial_fit_and_warm_start() -> None:
    x, y = load_iris(return_X_y=True)
    clf = MLPClassifier(random_state=0)
    for _ in range(30):
        clf.partial_fit(x, y, classes=[0, 1, 2])
    assert clf.n_iter_ == 30 and clf.score(x, y) > 0.8
    warm = MLPClassifier(random_state=0, max_iter=5, n_iter_no_change=0, warm_start=True).fit(x, y)
    w0 = warm.net_.params[0].value.copy()
    net = warm.net_
    warm.fit(x, y)
    assert warm.net_ is net and warm.n_iter_ == 10 and not np.array_equal(w0, net.params[0].value)
    cold = MLPClassifier(random_state=0, max_iter=5, n_iter_no_change=0).fit(x, y)
    net = cold.net_
    cold.fit(x, y)
    assert cold.net_ is not net and cold.n_iter_ == 5


def test_to_model_is_read_by_predict(tmp_path) -> None:
    pytest.importorskip("safetensors")
    from chainrule.jobs.predict import PredictConfig, run_predict

    x, y = load_iris(return_X_y=True)
    clf = MLPClassifier(random_state=0, max_iter=50, dtype="float32").fit(x, y)
    clf.to_model(str(tmp_path / "m.safetensors"))
    np.save(tmp_path / "x.npy", x)
    pred = run_predict(PredictConfig(str(tmp_path / "m.safetensors"), str(tmp_path / "x.npy")))
    assert pred.labels == [str(c) for c in clf.predict(x)]
