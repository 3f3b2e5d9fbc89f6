"""`chainrule explain --rbm D,H`: one CD-1 step of a tiny RBM (issue 10)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from chainrule.cli import main
from chainrule.errors import ConfigError
from chainrule.inspect.rbm_explain import explain_cd1


def test_step_is_positive_minus_negative_and_checked() -> None:
    st = explain_cd1(5, 3, batch=3, lr=0.2, seed=4)
    v = st.values
    np.testing.assert_allclose(v["positive"], v["v0"].T @ v["p(h|v0)"] / 3)
    np.testing.assert_allclose(v["dW"], 0.2 * (v["positive"] - v["negative"]))
    np.testing.assert_array_equal(v["h0"], (v["u_h"] < v["p(h|v0)"]).astype(float))
    assert st.ok and set(st.checks) == {"positive = -dF(v0)/dW", "negative = -dF(v1)/dW", "CDTrainer update"}


def test_explain_command(capsys) -> None:
    assert main(["explain", "--rbm", "4,3", "--input", "1,0,1,1;0,1,1,0", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] and np.array(out["values"]["v0"]).shape == (2, 4)
    assert main(["explain", "--rbm", "4,3"]) == 0
    text = capsys.readouterr().out
    assert "positive statistics" in text and "MISMATCH" not in text


def test_explain_refuses_big_or_non_binary(capsys) -> None:
    with pytest.raises(ConfigError):
        explain_cd1(40, 3)
    assert main(["explain", "--rbm", "4,3", "--input", "1,0,0.5,1"]) == 1
    assert "binary" in capsys.readouterr().err
