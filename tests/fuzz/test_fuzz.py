"""Structure-aware fuzzing of every input format (model headers, CSV, IDX, npy/npz, run records).

Hypothesis draws a mutation kind, a seed for its positions and sizes, and a hostile JSON value;
each mutation is invalid by construction (``hostile.CASES``). For every draw the CLI must refuse
with one ``chainrule: error:`` line, exit status 1 or 2, no traceback, no file created or changed,
and the process's peak memory must not jump (a bound on what one hostile input can allocate).

``CHAINRULE_FUZZ_EXAMPLES`` sets the draws per format (default 60: well under a minute in all);
``CHAINRULE_FUZZ_RANDOM=1`` explores new draws instead of the fixed, reproducible ones CI uses.
"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))  # no conftest here: tests/conftest.py is "conftest"

import hostile as h

EXAMPLES = int(os.environ.get("CHAINRULE_FUZZ_EXAMPLES", "60"))
PEAK_JUMP_MB = 256  # the most one hostile case may raise the process's peak RSS

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not os.environ.get("CHAINRULE_FUZZ_RANDOM"),
    database=None,
    suppress_health_check=list(HealthCheck),
)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.parametrize("fmt", sorted(h.CASES))
@FUZZ
@given(data=st.data())
def test_hostile_input_is_one_line_and_touches_nothing(fmt: str, data: st.DataObject) -> None:
    kind = data.draw(st.sampled_from(sorted(h.CASES[fmt])), label="kind")
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    value = data.draw(JSON, label="value")
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        argv = h.CASES[fmt][kind](d, np.random.default_rng(seed), value)
        before = _peak_mb()
        line = h.refused(argv, d)
        jump = _peak_mb() - before
    assert jump <= PEAK_JUMP_MB, f"{kind}: peak RSS rose by {jump:.0f} MB ({line})"


def test_every_format_has_mutations() -> None:
    assert {"model", "csv", "idx", "npy/npz", "run record"} <= set(h.CASES)
    assert sum(len(k) for k in h.CASES.values()) >= 60
