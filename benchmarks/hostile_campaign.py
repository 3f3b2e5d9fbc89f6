"""A hostile-input campaign: every mutation kind of ``tests/fuzz/hostile.py`` with several seeds,
plus flag, output-path and signal cases, each checked against the one-line error contract.

    python benchmarks/hostile_campaign.py [--seeds 6] [--json out.json]

Prints the count and pass rate by kind and exits 1 if any case broke the contract (one
``chainrule: error:`` line on stderr, exit status 1 or 2 (130/143 for signals), no traceback, no
file created or changed).
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests" / "fuzz"))

import hostile as h  # noqa: E402

FLAG_CASES: list[list[str]] = [
    ["train", "--layers", "784,100000000,10", "--epochs", "1"],
    ["train", "--layers", "784,60000,1000,10", "--epochs", "1"],
    ["train", "--max-params", "10", "--epochs", "1"],
    ["train", "--epochs", "0"],
    ["train", "--lr", "nan"],
    ["train", "--lr", "-1"],
    ["train", "--lr", "inf"],
    ["train", "--batch-size", "-3"],
    ["train", "--layers", "784,-5,10"],
    ["train", "--layers", "784,abc,10"],
    ["train", "--layers", "5,10", "--epochs", "1"],
    ["train", "--data", "no-such-file.csv"],
    ["train", "--data", "nope.xyz"],
    ["train", "--validation-split", "1.5"],
    ["gradcheck", "--layers", "4,100000000,3"],
    ["gradcheck", "--layers", "100000,100000,3"],
    ["gradcheck", "--batch", "0"],
    ["vanishing", "--width", "100000000", "--quick", "--no-plots"],
    ["explain", "--layers", "4,100000000,3"],
    ["predict", "--model", "missing.safetensors", "--input", "x.csv"],
    ["evaluate", "--model", "missing.safetensors"],
    ["report", "missing.json"],
    ["no-such-command"],
    ["train", "--no-such-flag"],
    ["train", "--seed", "-1"],
    ["train", "--dtype", "float16"],
    ["train", "--momentum", "2"],
    ["train", "--max-classes", "0"],
]


def output_cases(d: Path) -> list[list[str]]:
    """Every output flag pointed at an input or at another output (each must be refused)."""
    (d / "t.csv").write_text(h.csv_text(h.csv_rows()))
    (d / "m.safetensors").write_bytes(h.valid_model())
    (d / "r.json").write_text(json.dumps(h.valid_record()))
    (d / "dir").mkdir(exist_ok=True)
    (d / "link.csv").symlink_to(d / "t.csv")
    train = ["train", "--data", "t.csv", "--epochs", "1"]
    outs = ["--save", "--plot", "--log", "--report"]
    cases = [[*train, flag, "t.csv"] for flag in outs]
    cases += [[*train, flag, "link.csv"] for flag in outs]
    cases += [[*train, flag, "./t.csv"] for flag in outs]
    cases += [[*train, a, "o.bin", b, "o.bin"] for i, a in enumerate(outs) for b in outs[i + 1 :]]
    cases += [[*train, flag, "dir"] for flag in outs]
    cases += [[*train, flag, "missing-dir/o"] for flag in outs]
    cases += [[*train, "--save", "m.safetensors", flag, "dir"] for flag in outs[1:]]
    cases += [
        ["report", "r.json", "--out", "r.json"],
        ["report", "r.json", "--out", "dir"],
        ["explain", "--model", "m.safetensors", "--out", "m.safetensors"],
        ["explain", "--model", "m.safetensors", "--out", "dir"],
        ["vanishing", "--quick", "--out", "t.csv"],
    ]
    return cases


def signal_case(sig: int, delay: float, args: list[str], cwd: Path) -> str | None:
    """Run the console script's launcher, send ``sig`` after ``delay`` s; None when the contract held."""
    before = h.snapshot(cwd)
    code = "import sys; from chainrule_launch import entry; sys.argv[0] = 'chainrule'; entry()"
    p = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"},
    )
    time.sleep(delay)
    p.send_signal(sig)
    _, err = p.communicate(timeout=120)
    text = err.decode(errors="replace")
    lines = text.strip().splitlines()
    want = 130 if sig == signal.SIGINT else 143
    if p.returncode == 0 and not lines:
        return None  # finished before the signal: nothing to check
    if p.returncode == -sig and not lines:
        return None  # killed before Python installed its handlers (interpreter start-up)
    if (
        p.returncode != want
        or len(lines) != 1
        or not lines[0].startswith("chainrule: error:")
        or "Traceback" in text
    ):
        return f"rc={p.returncode} stderr={text[-300:]!r}"
    leftovers = [k for k in set(h.snapshot(cwd)) - set(before) if k.endswith(".tmp")]
    if leftovers:
        return f"temp files left: {leftovers}"
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=6, help="seeds per mutation kind")
    ap.add_argument("--signals", type=int, default=12, help="signal cases")
    ap.add_argument("--json", help="write the counts as JSON here")
    args = ap.parse_args()
    counts: Counter[str] = Counter()
    passed: Counter[str] = Counter()
    failures: list[str] = []

    def record(kind: str, problem: str | None) -> None:
        counts[kind] += 1
        if problem is None:
            passed[kind] += 1
        else:
            failures.append(f"[{kind}] {problem}")

    for fmt, kinds in h.CASES.items():
        for kind, make in kinds.items():
            for seed in range(args.seeds):
                rng = np.random.default_rng(1000 + seed)
                value = h.HOSTILE_VALUES[(seed * 7 + len(kind)) % len(h.HOSTILE_VALUES)]
                with tempfile.TemporaryDirectory() as tmp:
                    d = Path(tmp)
                    argv = make(d, rng, value)
                    try:
                        h.refused(argv, d)
                        record(fmt, None)
                    except AssertionError as exc:
                        record(fmt, f"{kind} seed {seed}: {exc}")
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "x.csv").write_text(h.csv_text(h.csv_rows(5, label=False)))
        for argv in FLAG_CASES:
            try:
                h.refused(argv, d)
                record("flags and sizes", None)
            except AssertionError as exc:
                record("flags and sizes", str(exc))
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        for argv in output_cases(d):
            try:
                h.refused(argv, d)
                record("output paths (data loss)", None)
            except AssertionError as exc:
                record("output paths (data loss)", str(exc))
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "t.csv").write_text(h.csv_text(h.csv_rows(2000)))
        rng = np.random.default_rng(7)
        for i in range(args.signals):
            sig = signal.SIGINT if i % 2 == 0 else signal.SIGTERM
            delay = float(rng.uniform(0.4, 3.0))  # after the interpreter's own start-up (see the note)
            argv = ["train", "--data", "t.csv", "--epochs", "200", "--quiet", "--save", "m.safetensors"]
            record("signals (SIGINT/SIGTERM)", signal_case(sig, delay, argv, d))

    total, ok = sum(counts.values()), sum(passed.values())
    width = max(len(k) for k in counts)
    for kind in counts:
        print(f"{kind:<{width}}  {passed[kind]:4d}/{counts[kind]:<4d}")
    print(f"{'total':<{width}}  {ok:4d}/{total:<4d}  pass rate {100 * ok / total:.1f}%")
    for f in failures[:40]:
        print("FAIL", f[:600])
    if args.json:
        Path(args.json).write_text(
            json.dumps({"counts": counts, "passed": passed, "failures": failures}, indent=1)
        )
    return 0 if ok == total else 1


if __name__ == "__main__":
    sys.exit(main())
