"""Run, check and record one step: :func:`explain` (every entry, small networks) and
:func:`summarize` (per-layer norms and a sampled gradient check, any size)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from chainrule.backend import numpy_backend, to_numpy
from chainrule.errors import ConfigError
from chainrule.inspect.explain.data import EPS, LIMITS, Explanation, NumericCheck, Summary, TooLargeError
from chainrule.inspect.explain.notation import GroupNotation, LossNotation
from chainrule.inspect.gradcheck import gradcheck, numeric_gradient, relative_error
from chainrule.inspect.trace import LayerTrace, trace
from chainrule.nn.functional import targets_like
from chainrule.nn.model import Sequential
from chainrule.optim import SGD

__all__ = ["check_size", "explain", "summarize"]


def _widths(net: Sequential) -> list[int]:
    d = net.input_dim
    out = [] if d is None else [int(d)]
    for layer in net.layers:
        if layer.params and d is not None:
            d = layer.output_dim(d)
            out.append(int(d))
    return out


def check_size(net: Sequential, batch: int) -> None:
    """Raise :class:`TooLargeError` unless the step is small enough to read in full."""
    problems = []
    widths = _widths(net)
    if widths and max(widths) > LIMITS["units"]:
        problems.append(f"a layer has {max(widths)} units (limit {LIMITS['units']})")
    n = net.num_params()
    if n > LIMITS["params"]:
        problems.append(f"{n} parameters (limit {LIMITS['params']})")
    if batch > LIMITS["batch"]:
        problems.append(f"a batch of {batch} samples (limit {LIMITS['batch']})")
    if problems:
        raise TooLargeError(
            "too large to explain step by step: "
            + "; ".join(problems)
            + "; use the summary view instead (chainrule explain --summary, or chainrule.inspect.explain.summarize)"
        )


def _describe(net: Sequential) -> dict[str, Any]:
    widths = _widths(net)
    return {
        "sizes": widths,
        "layers": [repr(layer) for layer in net.layers],
        "loss": None if net.loss is None else net.loss.name,
        "parameters": net.num_params(),
    }


def _prepare(net: Sequential, x: Any, y: Any) -> tuple[np.ndarray, Any, np.ndarray]:
    if net.loss is None:
        raise ConfigError("the network has no loss, so there is no backward pass to explain")
    if net.dtype != np.float64 or net.backend.name != "numpy":
        net.to(numpy_backend, "float64")
    x = np.array(to_numpy(x), dtype=np.float64)
    if x.ndim == 1:
        x = x[None, :]
    net.check_input(x)
    y = to_numpy(y)
    out_dim = net.output_dim()
    if out_dim is None:
        out_dim = int(np.asarray(net.forward(x)).shape[1])
    t = targets_like(np.zeros((x.shape[0], out_dim)), np.asarray(y))
    return x, y, t


def _tail_cost(net: Sequential, start: int, inp: np.ndarray, y: Any) -> float:
    out = inp
    for layer in net.layers[start:]:
        out, _ = layer.forward(out)
    return float(net.loss.value(out, y))


def _numeric(f: Any, arr: np.ndarray, h: float = EPS) -> np.ndarray:
    """∂f/∂arr, every entry: :func:`chainrule.inspect.gradcheck.numeric_gradient` at step ``h``."""
    return numeric_gradient(f, arr, h)


def _check(analytic: np.ndarray, numeric: np.ndarray) -> NumericCheck:
    return NumericCheck(numeric=numeric, rel_error=relative_error(analytic, numeric))


# -- the explanation -------------------------------------------------------------------------------
def explain(
    net: Sequential, x: Any, y: Any, *, lr: float = 0.1, notes: Sequence[str] = (), limit: bool = True
) -> Explanation:
    """Run, check and record one SGD step of ``net`` on ``(x, y)``.

    ``net`` is moved to float64 NumPy in place (the checks need it) and takes one step of size
    ``lr``. ``limit=False`` skips :func:`check_size` (tests, or callers who know better).
    """
    x, y, t = _prepare(net, x, y)
    if limit:
        check_size(net, x.shape[0])
    with trace(net) as tr:
        E = net.loss_and_grad(x, y)
        tr.record_loss(E, t)
    layers = tr.layers()
    out = np.array(to_numpy(layers[-1].a), copy=True)
    probs = None
    if net.loss.fused is not None:
        probs = np.array(to_numpy(net.loss.probabilities(out)), copy=True)
    checks = {lt.l: _layer_checks(net, lt, x, y) for lt in layers}
    gc = gradcheck(net, x, y, max_per_param=None)
    net.loss_and_grad(x, y)  # the same gradients again: gradcheck may reset param.grad
    updates = tr.step(SGD(lr))
    return Explanation(
        network=_describe(net),
        x=x,
        y=y,
        t=t,
        loss=net.loss.name,
        E=float(to_numpy(E)),
        out=out,
        probabilities=probs,
        layers=layers,
        checks=checks,
        gradcheck=gc,
        updates=updates,
        lr=float(lr),
        notation={g.l: GroupNotation.of(g) for g in net.groups()},
        loss_notation=LossNotation.of(net.loss),
        notes=list(notes),
    )


def _layer_checks(net: Sequential, lt: LayerTrace, x: np.ndarray, y: Any) -> dict[str, NumericCheck]:
    """Central differences for every quantity recorded for layer ``lt`` (the tracer is detached,
    so these extra passes are not traced)."""
    per: dict[str, NumericCheck] = {}
    head, last = lt.indices[0], lt.indices[-1]
    if lt.delta is not None:
        z = lt.z.copy()
        per["delta"] = _check(lt.delta, _numeric(lambda: _tail_cost(net, head + 1, z, y), z))
    if lt.dE_da is not None:
        a = lt.a.copy()
        per["dE_da"] = _check(lt.dE_da, _numeric(lambda: _tail_cost(net, last + 1, a, y), a))
    for p in net.layers[head].params:
        g = lt.dW if p.name == "W" else lt.db if p.name == "b" else None
        if g is not None:
            key = "dW" if p.name == "W" else "db"
            per[key] = _check(g, _numeric(lambda: net.cost(x, y), p.value))
    return per


def summarize(
    net: Sequential, x: Any, y: Any, *, lr: float = 0.1, samples: int = 10, notes: Sequence[str] = ()
) -> Summary:
    """Per-layer norms of one SGD step, and a gradient check of ``samples`` entries per parameter."""
    x, y, _ = _prepare(net, x, y)
    with trace(net) as tr:
        E = net.loss_and_grad(x, y)
    layers = tr.layers()
    gc = gradcheck(net, x, y, max_per_param=samples)
    net.loss_and_grad(x, y)  # the same gradients again: gradcheck may reset param.grad
    updates = {u.name: u for u in tr.step(SGD(lr))}
    rows = []
    for lt in layers:
        head = lt.indices[0]
        uW, ub = updates.get(f"{head}.W"), updates.get(f"{head}.b")
        rows.append(
            {
                "l": lt.l,
                "layer": lt.label,
                "shape_W": None if lt.W is None else list(lt.W.shape),
                "norm_W": _nrm(lt.W),
                "norm_a": _nrm(lt.a),
                "norm_delta": _nrm(lt.delta),
                "norm_dW": _nrm(lt.dW),
                "norm_db": _nrm(lt.db),
                "update_ratio": _finite(None if uW is None else uW.relative_change),
                "update_ratio_b": _finite(None if ub is None else ub.relative_change),
                "gradcheck_W": gc.errors.get(f"{head}.W"),
                "gradcheck_b": gc.errors.get(f"{head}.b"),
            }
        )
    return Summary(
        network=_describe(net),
        loss=net.loss.name,
        E=float(to_numpy(E)),
        batch=int(x.shape[0]),
        rows=rows,
        gradcheck=gc,
        lr=float(lr),
        notes=list(notes),
    )


def _finite(v: float | None) -> float | None:
    """``None`` for a ratio that is undefined (a zero parameter, e.g. fresh biases, that moved)."""
    return v if v is not None and np.isfinite(v) else None


def _nrm(a: np.ndarray | None) -> float | None:
    return None if a is None else float(np.linalg.norm(a))
