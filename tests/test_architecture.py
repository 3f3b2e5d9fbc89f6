"""The architecture, checked: imports point down the layers, no module cycles, no hidden imports.

The layers contract itself lives in ``pyproject.toml`` and is run here (and in CI) by import-linter.
"""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

import grimp
import pytest

SRC = pathlib.Path(__file__).resolve().parents[1] / "src" / "chainrule"

#: optional heavy dependencies: the only things a function may import (the core import stays light)
OPTIONAL = {
    "torch",
    "cupy",
    "cupyx",
    "matplotlib",
    "mpi4py",
    "safetensors",
    "tqdm",
    "threadpoolctl",
    "array_api_compat",
    "onnx",
    "onnxruntime",
    "sklearn",
    "rich",
}


def test_layers_contract_is_kept() -> None:
    exe = pathlib.Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run([str(exe), "--no-cache"], capture_output=True, text=True, cwd=SRC.parents[1])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout


def _sccs(graph: grimp.ImportGraph) -> list[set[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    modules = sorted(graph.modules)
    succ = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[set[str]] = []
    counter = 0
    for root in modules:
        if root in index:
            continue
        work = [(root, iter(succ[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            node, it = work[-1]
            nxt = next(it, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on.add(nxt)
                    work.append((nxt, iter(succ.get(nxt, []))))
                elif nxt in on:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = set()
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.add(w)
                    if w == node:
                        break
                if len(comp) > 1:
                    out.append(comp)
    return out


def test_no_import_cycles_between_modules() -> None:
    graph = grimp.build_graph("chainrule", cache_dir=None)
    # a package's __init__ re-exporting its own modules is not a cycle of the architecture
    cycles = [c for c in _sccs(graph) if not all(m.startswith(min(c)) for m in c)]
    assert cycles == [], f"import cycles: {cycles}"


def _function_imports(path: pathlib.Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text())
    found = []
    for fn in ast.walk(tree):
        if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(fn):
            if isinstance(node, ast.Import):
                found += [(node.lineno, a.name) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                found.append((node.lineno, "." * node.level + (node.module or "")))
    return found


@pytest.mark.parametrize("path", sorted(SRC.rglob("*.py")), ids=lambda p: str(p.relative_to(SRC)))
def test_imports_inside_functions_are_optional_heavy_dependencies(path: pathlib.Path) -> None:
    """A function-level import is allowed only for an optional dependency, and says so."""
    lines = path.read_text().splitlines()
    bad = []
    for lineno, mod in _function_imports(path):
        top = mod.lstrip(".").split(".")[0]
        if mod.startswith(".") or top not in OPTIONAL:
            bad.append(f"{lineno}: {mod} (not an optional dependency)")
        elif "# optional" not in lines[lineno - 1]:
            bad.append(f"{lineno}: {mod} (add a '# optional: ...' comment saying why it is deferred)")
    assert bad == [], "\n".join(bad)


MAX_FUNCTION_LINES = 100


def test_no_function_is_longer_than_100_lines() -> None:
    long = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                if n > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(SRC)}:{node.lineno} {node.name} ({n} lines)")
    assert long == [], "\n".join(long)


#: the stable formulas, as array code; they may appear only in nn/functional.py (kernel strings aside)
FORMULA_NAMES = {"sigmoid", "softmax", "log_softmax", "softplus", "logsumexp"}
FORMULA_SHAPES = ("exp(-xp.abs(", "exp(-np.abs(", "np.negative(np.abs(", "log1p(xp.exp(-", "log1p(np.exp(-")


def test_stable_formulas_are_written_once() -> None:
    """No module but ``nn/functional.py`` defines a sigmoid/softmax/log-softmax/softplus or writes
    their stable forms (``e^{-|z|}``, ``log1p(e^{-|z|})``) in array code."""
    home = SRC / "nn" / "functional.py"
    found = []
    for path in sorted(SRC.rglob("*.py")):
        if path == home:
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.name.lstrip("_").split("_into")[0] in FORMULA_NAMES:
                found.append(f"{path.relative_to(SRC)}:{node.lineno} defines {node.name}")
        for i, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#")[0].replace(" ", "")
            if (
                any(s.replace(" ", "") in code for s in FORMULA_SHAPES)
                and '"' not in code
                and "'" not in code
            ):
                found.append(f"{path.relative_to(SRC)}:{i} writes a stable formula: {line.strip()}")
    assert found == [], "\n".join(found)
