"""The streaming CSV loader (issue 13) against the loader it replaced (``csv_reference_loader``).

For a valid file both must give bit-identical train/test parts (same rows, same order, so the same
split under a seed), the same header decision, class names, task and warnings. For a file with one
defect both must raise the same error with the same message. Block sizes are made tiny so that
every case crosses block boundaries (a header decided late, text labels after numbers, the first
row turning out to be data).

What changed on purpose is tested at the end: a value too large for float32 is named by row and
column, text labels are refused by the class limit while they are read, and a malformed CSV
names its line.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import csv_reference_loader as reference
from chainrule.errors import ChainruleError, DataError
from chainrule.io import tabular
from chainrule.limits import override

FIELDS = ("x_train", "y_train", "x_test", "y_test")


def _load(loader, path: Path, kw: dict):
    try:
        return loader(path, **kw)
    except ChainruleError as e:
        return e


def assert_same(path: Path, block_cells: int, **kw) -> None:
    """The streaming loader (blocks of ``block_cells`` cells) and the reference agree on ``path``."""
    old = _load(reference.load_csv, path, kw)
    saved = tabular.BLOCK_CELLS
    tabular.BLOCK_CELLS = block_cells
    try:
        new = _load(tabular.load_csv, path, kw)
    finally:
        tabular.BLOCK_CELLS = saved
    text = path.read_text(encoding="utf-8-sig")
    if isinstance(old, Exception):
        assert type(new) is type(old) and str(new) == str(old), f"{kw}\n{text}\nold: {old}\nnew: {new}"
        return
    assert not isinstance(new, Exception), f"{kw}\n{text}\nold loaded, new raised: {new}"
    for f in FIELDS:
        a, b = getattr(old, f), getattr(new, f)
        assert a.dtype == b.dtype and a.shape == b.shape, (f, a.dtype, b.dtype, a.shape, b.shape)
        assert a.tobytes() == b.tobytes(), f"{f} differs\n{text}"
    for attr in ("name", "n_classes", "feature_names", "class_names", "task", "warnings"):
        assert getattr(old, attr) == getattr(new, attr), (attr, text)


CASES = {
    "header, numeric labels": ("a,b,label\n1,2,0\n3,4,1\n5,6,2\n7,8,1\n9,10,0\n", {}),
    "no header": ("1,2,0\n3,4,1\n5,6,2\n7,8,1\n", {}),
    "text labels, no header": ("1,2,cat\n3,4,dog\n5,6,cat\n7,8,bird\n", {}),
    "named target in the middle": (
        "s,species,w\n1,setosa,2\n3,virginica,4\n5,setosa,6\n",
        {"target": "species"},
    ),
    "label-only text first row, numbers below: a header": ("1,2,label\n3,4,0\n5,6,1\n7,8,0\n", {}),
    "label-only text first row alone: data": ("1,2,cat\n", {"test_fraction": 0}),
    "label-only text first row, text below: data": ("1,2,cat\n3,4,dog\n5,6,cat\n", {}),
    "label-only text first row, text far below": (
        "1,2,cat\n" + "".join(f"{i},{i},{i % 3}\n" for i in range(20)) + "9,9,dog\n",
        {},
    ),
    "numbers then text labels": ("".join(f"{i},{i % 4}\n" for i in range(30)) + "5,other\n", {}),
    "1, 1.0 and 01 are three class names next to text": ("1,1\n2,1.0\n3,01\n4,x\n5,1\n", {}),
    "regression target": ("".join(f"{i},{i * 0.37 - 2:.3f}\n" for i in range(25)), {}),
    "negative whole numbers": ("".join(f"{i},{i - 5}\n" for i in range(12)), {}),
    "many dense classes": ("".join(f"{i},{i % 25}\n" for i in range(60)), {}),
    "many sparse integers": ("".join(f"{i},{3 * i + 100}\n" for i in range(30)), {}),
    "1-based classes: an empty class": ("".join(f"{i},{1 + i % 3}\n" for i in range(9)), {}),
    "blank lines, spaces, quotes, CRLF": (
        'a , "b"\r\n\r\n 1 , 2 \r\n  \r\n"3",4\r\n5 ,6\r\n,\r\n7,"8"\r\n',
        {"target": 0},
    ),
    "target as a negative index": ("a,label,b\n1,0,2\n3,1,4\n5,0,6\n", {"target": -2}),
    "target index as a string": ("label,x1,x2\n1,0.5,0.25\n0,1.5,1.25\n1,2,3\n", {"target": "0"}),
    "classify asked": ("1,2,3\n4,5,1\n6,7,30\n", {"task": "classify"}),
    "regress asked": ("1,2,3\n4,5,1\n6,7,30\n", {"task": "regress"}),
    "text labels under classify": ("1,a\n2,b\n", {"task": "classify"}),
    # one defect each: the same error, word for word
    "non-numeric feature": ("a,b,label\n1,2,0\n3,oops,1\n", {}),
    "empty feature": ("a,b,label\n1,2,0\n3,,1\n", {}),
    "nan feature": ("1,2,0\n3,nan,1\n", {}),
    "inf feature, with header names": ("a,b,label\n1,2,0\n3,-inf,1\n", {}),
    "ragged row": ("1,2,0\n3,4\n", {}),
    "long row": ("a,b,c\n1,2,0\n3,4,1,5\n", {}),
    "empty label": ("a,b,label\n1,2,0\n3,4,\n", {}),
    "empty label after a label-only text first row": ("1,2,label\n3,4,0\n5,6,\n", {}),
    "text regression target": ("1,2.5\n2,x\n", {"task": "regress"}),
    "text regression target in a label-only first row": ("1,2,y\n3,4,x\n", {"task": "regress"}),
    "non-finite label": ("a,label\n1,0\n2,inf\n3,1\n", {}),
    "two non-finite labels, the first named": ("a,label\n1,0\n2,inf\n3,1\n4,nan\n5,-inf\n", {}),
    "two fractional classes, the first named": ("1,0\n2,1\n3,1.5\n4,2\n5,-2\n", {"task": "classify"}),
    "fractional class": ("1,2,0\n3,4,0.5\n", {"task": "classify"}),
    "negative class": ("1,2,0\n3,4,-1\n", {"task": "classify"}),
    "class index over the limit": ("1,0\n2,1000000000\n", {}),
    "regression target too large for float32": ("1,1e39\n2,3.5\n", {"task": "regress"}),
    "unknown target": ("a,b,label\n1,2,0\n3,4,1\n", {"target": "nope"}),
    "named target, no header": ("1,2,0\n3,4,1\n", {"target": "label"}),
    "index out of range": ("1,2,0\n3,4,1\n", {"target": 3}),
    "target neither name nor index": ("1,2,0\n3,4,1\n", {"target": 1.5}),
    "one column": ("1\n2\n", {}),
    "one text column": ("x\n1\n", {}),
    "only a header": ("a,b,label\n", {}),
    "empty file": ("", {}),
    "blank file": ("\n\n  \n", {}),
    "unknown task": ("1,2\n3,4\n", {"task": "cluster"}),
    "feature error below a label-only text first row: named columns": ("1,2,label\n3,x,0\n5,6,1\n", {}),
    "feature error below a label-only text first row, text labels later": (
        "1,2,label\n3,x,0\n5,6,1\n7,8,cat\n",
        {},
    ),
    "empty feature in a first row that is data": ("1,,cat\n3,4,dog\n", {}),
}


@pytest.mark.parametrize("block_cells", [1, 5, 1 << 18])
@pytest.mark.parametrize("case", sorted(CASES))
def test_streaming_loader_matches_the_reference(tmp_path: Path, case: str, block_cells: int) -> None:
    content, kw = CASES[case]
    p = tmp_path / "t.csv"
    p.write_text(content, newline="")
    for seed, fraction in ((0, 0.2), (3, 0.5)):
        assert_same(p, block_cells, **{"seed": seed, "test_fraction": fraction, **kw})


def _number(rng: np.random.Generator) -> str:
    v = rng.standard_normal() * 10 ** int(rng.integers(-3, 4))
    return str(rng.choice([f"{v:.3f}", f"{v:g}", f"{v:.2e}", f" {v:.1f} ", f'"{v:.4f}"', str(int(v))]))


def _labels(rng: np.random.Generator, n: int) -> list[str]:
    kind = rng.integers(0, 7)
    if kind == 0:
        return [str(rng.integers(0, 4)) for _ in range(n)]
    if kind == 1:
        return [str(i % 23) for i in range(n)]
    if kind == 2:
        return [f"{rng.standard_normal():.3f}" for _ in range(n)]
    if kind == 3:
        return [str(rng.choice(["cat", "dog", "bird", "Ant", "1", "1.0"])) for _ in range(n)]
    if kind == 4:  # numbers, then text somewhere
        out = [str(rng.integers(0, 3)) for _ in range(n)]
        out[int(rng.integers(0, n))] = "other"
        return out
    if kind == 5:
        return [str(rng.integers(-3, 3)) for _ in range(n)]
    return [str(int(rng.integers(0, 50)) * 7) for _ in range(n)]


def _defect(rng: np.random.Generator, rows: list[list[str]], lc: int) -> None:
    """One error that no reading order can hide: an empty, text or non-finite feature, a ragged
    row, or an empty label."""
    i = int(rng.integers(0, len(rows)))
    feats = [j for j in range(len(rows[i])) if j != lc]
    kind = rng.integers(0, 5)
    if kind == 4:
        rows[i][lc] = ""
    elif kind == 3:
        rows[i] = [*rows[i], "1"] if rng.random() < 0.5 else rows[i][:-1]
    else:
        rows[i][int(rng.choice(feats))] = ["", "oops", "nan"][kind]


def random_table(rng: np.random.Generator) -> tuple[str, dict]:
    """A small random CSV file and the keyword arguments to load it with."""
    n, d = int(rng.integers(1, 30)), int(rng.integers(1, 5))
    kw: dict = {"seed": int(rng.integers(0, 5)), "test_fraction": float(rng.choice([0.0, 0.2, 0.5]))}
    lc = d if rng.random() < 0.6 else int(rng.integers(0, d + 1))
    if lc != d:
        kw["target"] = lc if rng.random() < 0.5 else lc - (d + 1)
    labels = _labels(rng, n)
    rows = [[_number(rng) for _ in range(d)] for _ in range(n)]
    for r, y in zip(rows, labels, strict=True):
        r.insert(lc, y)
    header = rng.integers(0, 3)
    if header == 1:  # names
        rows.insert(0, [f"c{j}" for j in range(d + 1)])
        if rng.random() < 0.5:
            kw["target"] = f"c{lc}"
    elif header == 2:  # numbers over the features, a name over the label
        rows.insert(0, [str(j) for j in range(d + 1)])
        rows[0][lc] = "label"
    if rng.random() < 0.3:
        _defect(rng, rows, lc)
    lines = [",".join(r) for r in rows]
    for _ in range(int(rng.integers(0, 3))):
        lines.insert(int(rng.integers(0, len(lines) + 1)), rng.choice(["", "  ", ","]))
    eol = "\r\n" if rng.random() < 0.2 else "\n"
    return ("\ufeff" if rng.random() < 0.1 else "") + eol.join(lines) + eol, kw


def test_streaming_loader_matches_the_reference_on_random_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(20261201)
    p = tmp_path / "r.csv"
    for _ in range(400):
        content, kw = random_table(rng)
        p.write_text(content, encoding="utf-8", newline="")
        assert_same(p, int(rng.choice([1, 3, 7, 1 << 18])), **kw)


# --------------------------------------------------------------------------------------------
# What changed on purpose
# --------------------------------------------------------------------------------------------


def test_value_overflowing_float32_names_row_and_column(tmp_path: Path) -> None:
    p = tmp_path / "big.csv"
    p.write_text("a,b,label\n1,2,0\n3,1e39,1\n")
    with pytest.raises(DataError, match=r"row 3, column 2 \('b'\): value '1e39' overflows float32"):
        tabular.load_csv(p)
    with pytest.raises(DataError, match="non-finite value"):  # the reference: a count and a row index
        reference.load_csv(p)


def test_text_labels_are_refused_by_the_class_limit_as_they_are_read(tmp_path: Path) -> None:
    p = tmp_path / "names.csv"
    p.write_text("".join(f"{i},name{i}\n" for i in range(200)))
    with override(max_classes=50), pytest.raises(DataError) as e:
        tabular.load_csv(p)
    assert "row 51, column 2: the labels ask for 51 classes, over the limit of 50" in str(e.value)
    with override(max_classes=200):
        assert tabular.load_csv(p).n_classes == 200


def test_text_after_more_distinct_numbers_than_the_limit_is_refused(tmp_path: Path) -> None:
    """Ten numeric labels stop being numbered past a limit of 5; the text label on line 11 makes them
    all class names, and the sixth (line 6) is one too many, whatever the block size."""
    p = tmp_path / "mixed.csv"
    p.write_text("".join(f"{i},{i}\n" for i in range(10)) + "10,cat\n")
    for block_cells in (2, 8, 1 << 18):
        tabular.BLOCK_CELLS, saved = block_cells, tabular.BLOCK_CELLS
        try:
            with (
                override(max_classes=5),
                pytest.raises(DataError, match=r"row 6, column 2: the labels ask for 6"),
            ):
                tabular.load_csv(p)
        finally:
            tabular.BLOCK_CELLS = saved
    with override(max_classes=11):
        d = tabular.load_csv(p, test_fraction=0)
    assert d.class_names == sorted([*map(str, range(10)), "cat"])


def test_malformed_csv_names_its_line(tmp_path: Path) -> None:
    p = tmp_path / "bad.csv"
    p.write_text('1,2,0\n3,4,1\n5,"' + ("x" * 999 + "\n") * 200 + '",1\n')  # a 200 kB quoted field
    with pytest.raises(DataError, match=r"malformed CSV near line \d+ \(field larger than field limit"):
        tabular.load_csv(p)


def test_a_wide_table_holds_one_block_of_cells(tmp_path: Path) -> None:
    """Blocks are counted in cells, so a 2000-column table reads a few rows at a time."""
    p = tmp_path / "wide.csv"
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 2000)).round(3)
    np.savetxt(p, np.column_stack([x, np.arange(40) % 2]), fmt="%g", delimiter=",")
    seen: list[int] = []
    add = tabular._Reader._add_block

    def spy(self, rows, labels, lines, front=False):
        seen.append(len(rows))
        return add(self, rows, labels, lines, front)

    saved = tabular.BLOCK_CELLS
    tabular.BLOCK_CELLS, tabular._Reader._add_block = 20_000, spy
    try:
        d = tabular.load_csv(p, test_fraction=0, seed=0)
    finally:
        tabular.BLOCK_CELLS, tabular._Reader._add_block = saved, add
    assert seen == [9, 9, 9, 9, 4]  # 20000 // 2001 rows per block
    np.testing.assert_array_equal(np.sort(d.x_train[:, 0]), np.sort(x[:, 0].astype(np.float32)))
