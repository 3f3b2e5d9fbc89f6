"""Seed 002's worked example ("形象的例子"), rebuilt with chainrule's own layers and checked figure by figure.

The post's network is 3-2-2 with sigmoid units and squared error, written per unit::

    z_h1 = w1 x1 + w3 x2 + w5 x3 + b1        z_o1 = w7 h1 + w9  h2 + b2       E = ½ Σ_k (o_k − t_k)²
    z_h2 = w2 x1 + w4 x2 + w6 x3 + b1        z_o2 = w8 h1 + w10 h2 + b2

with x = (1, 4, 5), t = (0.1, 0.05), w1..w9 = 0.1..0.9, w10 = 0.1, b1 = b2 = 0.5 and α = 0.01.
In chainrule's row layout (``z = x W + b``, ``W`` of shape ``(D_in, D_out)``) that is::

    W¹ = [[w1, w2], [w3, w4], [w5, w6]]      W² = [[w7, w8], [w9, w10]]

so ``W¹.ravel()`` is w1..w6 and ``W².ravel()`` is w7..w10. The post uses ONE bias ``b1`` for both
hidden units (and one ``b2`` for both outputs). We keep chainrule's ``Dense`` and represent the tie
faithfully: the bias vector is ``[b1, b1]`` and its gradient is *tied* — each entry is replaced by the
sum of the per-unit gradients, ``∂E/∂b1 = Σ_j ∂E/∂z_hj``, which is the derivative of E with respect to
the shared scalar (the chain rule sums over every path through a shared parameter). A plain SGD step
on the tied gradient keeps both entries equal, so the bias stays one number.

The post's printed figures are data here (:data:`POST`): they are what is being checked. Every
correct value is computed by the library (forward, :class:`~chainrule.inspect.trace.Tracer`, backward,
:class:`~chainrule.optim.SGD`); the tests confirm those values independently with central differences
and PyTorch autograd.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from chainrule.inspect.trace import trace
from chainrule.nn.layers import Dense, Sigmoid
from chainrule.nn.model import Sequential
from chainrule.optim import SGD

__all__ = [
    "BIAS",
    "LR",
    "PARAM_INDEX",
    "POST",
    "RATES",
    "TOLERANCE",
    "WEIGHTS",
    "Convergence",
    "Erratum",
    "ExampleResult",
    "Figure",
    "RateRun",
    "T",
    "X",
    "build_network",
    "converge",
    "post_arithmetic",
    "run_example",
    "tie_bias_grads",
]

X = np.array([[1.0, 4.0, 5.0]])
T = np.array([[0.1, 0.05]])
WEIGHTS = {f"w{i}": round(0.1 * i, 10) for i in range(1, 10)} | {"w10": 0.1}
BIAS = 0.5
LR = 0.01
#: learning rates of the convergence study, and its stated tolerance: E < 1e-6, i.e. the root mean
#: square output error below 1e-3 (½ Σ d² < 1e-6 with two outputs)
RATES = (0.01, 0.1, 0.5, 1.0, 3.0)
TOLERANCE = 1e-6
SCAN_TOLERANCES = (1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7)
MAX_ITER = 100_000
POST_ITERATIONS = 1500  # "可以看到大约1500次左右，已经收敛到最小误差了"

#: where each of the post's parameters lives in the chainrule network: (layer index, param, entry)
PARAM_INDEX: dict[str, tuple[int, str, tuple[int, ...] | None]] = {
    "w1": (0, "W", (0, 0)),
    "w2": (0, "W", (0, 1)),
    "w3": (0, "W", (1, 0)),
    "w4": (0, "W", (1, 1)),
    "w5": (0, "W", (2, 0)),
    "w6": (0, "W", (2, 1)),
    "w7": (2, "W", (0, 0)),
    "w8": (2, "W", (0, 1)),
    "w9": (2, "W", (1, 0)),
    "w10": (2, "W", (1, 1)),
    "b1": (0, "b", None),
    "b2": (2, "b", None),
}

# -- what the post prints ---------------------------------------------------------------------------
# The forward and chain-factor lines: (name, printed figure, the post's own arithmetic or None).
_FORWARD_LINES: list[tuple[str, float, str | None]] = [
    ("z_h1", 4.3, "0.1 × 1 + 0.3 × 4 + 0.5 × 5 + 0.5"),
    ("h1", 0.9866, None),
    ("z_h2", 5.3, "0.2 × 1 + 0.4 × 4 + 0.6 × 5 + 0.5"),
    ("h2", 0.9950, None),
    ("z_o1", 2.0862, "0.7 × 0.9866 + 0.9 × 0.9950 + 0.5"),
    ("o1", 0.8896, None),
    ("z_o2", 1.3888, "0.8 × 0.9866 + 0.1 × 0.9950 + 0.5"),
    ("o2", 0.8004, None),
]
_CHAIN_LINES: list[tuple[str, float, str | None]] = [
    ("∂E/∂o1 = o1 − t1", 0.7896, "0.8896 − 0.1"),
    ("∂E/∂o2 = o2 − t2", 0.7504, None),
    ("o1(1 − o1)", 0.0983, None),
    ("o2(1 − o2)", 0.1598, None),
    ("∂E/∂h1", 0.1502, "0.7896 × 0.0983 × 0.7 + 0.7504 × 0.1598 × 0.8"),
    ("∂E/∂h2", 0.0818, "0.7896 × 0.0983 × 0.9 + 0.7504 × 0.1598 × 0.1"),
    ("h1(1 − h1)", 0.0132, None),
    ("h2(1 − h2)", 0.0049, None),
]
# The gradient and update lines, one row per parameter θ: (θ, printed ∂E/∂θ, the post's arithmetic
# for it, printed θ after the step, the post's arithmetic for that).
_PARAMETER_LINES: list[tuple[str, float, str, float, str]] = [
    ("w1", 0.0020, "0.1502 × 0.0132 × 1", 0.1000, "0.1 − 0.01 × 0.0020"),
    ("w2", 0.0004, "0.0818 × 0.0049 × 1", 0.2000, "0.2 − 0.01 × 0.0004"),
    ("w3", 0.0079, "0.1502 × 0.0132 × 4", 0.2999, "0.3 − 0.01 × 0.0079"),
    ("w4", 0.0016, "0.0818 × 0.0049 × 4", 0.4000, "0.4 − 0.01 × 0.0016"),
    ("w5", 0.0099, "0.1502 × 0.0132 × 5", 0.4999, "0.5 − 0.01 × 0.0099"),
    ("w6", 0.0020, "0.0818 × 0.0049 × 5", 0.6000, "0.6 − 0.01 × 0.0020"),
    ("w7", 0.0765, "(0.8896 − 0.1) × (0.8896 × (1 − 0.8896)) × 0.9866", 0.6992, "0.7 − 0.01 × 0.0765"),
    ("w8", 0.1183, "0.7504 × 0.1598 × 0.9866", 0.7988, "0.8 − 0.01 × 0.1183"),
    ("w9", 0.0772, "0.7896 × 0.0983 × 0.9950", 0.8992, "0.9 − 0.01 × 0.0772"),
    ("w10", 0.1193, "0.7504 × 0.1598 × 0.9950", 0.0988, "0.1 − 0.01 × 0.1193"),
    (
        "b1",
        0.0008,
        "0.7896 × 0.9983 × 0.7 × 0.0132 × 1 + 0.7504 × 0.1598 × 0.1 × 0.0049 × 1",
        0.0500,
        "0.1 − 0.01 × 0.0008",
    ),
    ("b2", 0.1975, "0.7896 × 0.0983 × 1 + 0.7504 × 0.1598 × 1", 0.4980, "0.1 − 0.01 × 0.1975"),
]
# How the post labels a line when that differs from the quantity, or what else to know about it.
_NOTES = {
    "z_o2": "printed as z_o1 = w7 h1 + w9 h2 + b2",
    "o2": "printed as o1 = σ(z_o1)",
    "o1(1 − o1)": "the b1 line types 0.9983",
    "∂E/∂w10": "written ∂E/∂w_10",
    "∂E/∂b1": "tied: one b1 for both hidden units",
    "∂E/∂b2": "tied: one b2 for both outputs",
    "w10": "written w_10",
    "b1": "b1 := b1 − α ∂E/∂b1",
    "b2": "printed as b_1 := b_2 − α ∂E/∂b2",
}

#: what the post prints, per section: (name, printed figure, the post's own arithmetic or None, note)
POST: dict[str, list[tuple[str, float, str | None, str]]] = {
    "forward": [(n, v, e, _NOTES.get(n, "")) for n, v, e in _FORWARD_LINES],
    "chain": [(n, v, e, _NOTES.get(n, "")) for n, v, e in _CHAIN_LINES],
    "gradients": [(f"∂E/∂{n}", g, e, _NOTES.get(f"∂E/∂{n}", "")) for n, g, e, _, _ in _PARAMETER_LINES],
    "updated": [(n, v, e, _NOTES.get(n, "")) for n, _, _, v, e in _PARAMETER_LINES],
}

_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def post_arithmetic(expr: str) -> float:
    """Evaluate one of the post's arithmetic lines (numbers, + − × /, parentheses) exactly as typed.

    This re-does the post's own sums from its own rounded factors, which separates a rounding
    difference (its factors give 0.1503, the true value rounds to its printed 0.1502) from a slip.
    """
    text = expr.replace("×", "*").replace("−", "-").replace("÷", "/")

    def ev(node: ast.AST) -> float:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return float(node.value)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -ev(node.operand)
        raise ValueError(f"not plain arithmetic: {expr!r}")

    return ev(ast.parse(text, mode="eval"))


# -- the network -----------------------------------------------------------------------------------
def build_network(dtype: Any = np.float64) -> Sequential:
    """Seed 002's 3-2-2 sigmoid network with the post's weights, biases ``[0.5, 0.5]``, squared error."""
    w = WEIGHTS
    W1 = np.array([[w["w1"], w["w2"]], [w["w3"], w["w4"]], [w["w5"], w["w6"]]], dtype=dtype)
    W2 = np.array([[w["w7"], w["w8"]], [w["w9"], w["w10"]]], dtype=dtype)
    b = np.full(2, BIAS, dtype=dtype)
    layers = [Dense(3, 2, W=W1, b=b, dtype=dtype), Sigmoid(), Dense(2, 2, W=W2, b=b, dtype=dtype), Sigmoid()]
    return Sequential(layers, loss="squared", input_dim=3)


def tie_bias_grads(net: Sequential) -> None:
    """Replace each bias gradient by the sum of its entries: the gradient of ONE shared bias.

    With ``b = [β, β]`` and E depending on β through both entries, ``∂E/∂β = Σ_j ∂E/∂b_j``. Writing
    that sum into every entry makes a plain SGD step move all entries together.
    """
    for _, p in net.named_params():
        if p.name == "b":
            p.grad[...] = p.grad.sum()


def param_value(net: Sequential, name: str, *, grad: bool = False) -> float:
    """The post's ``w1`` .. ``w10``, ``b1``, ``b2`` read from the network (value or gradient)."""
    i, pname, entry = PARAM_INDEX[name]
    p = {q.name: q for q in net.layers[i].params}[pname]
    arr = p.grad if grad else p.value
    return float(arr[entry] if entry is not None else arr[0])


# -- results ---------------------------------------------------------------------------------------
@dataclass
class Figure:
    """One quantity: chainrule's value beside the post's printed figure."""

    name: str
    ours: float
    post: float | None = None
    post_expr: str | None = None
    post_expr_value: float | None = None
    note: str = ""

    @property
    def agrees(self) -> bool | None:
        """Does the post's figure equal ours at 4 decimals? (None when the post prints none)."""
        if self.post is None:
            return None
        return f"{self.ours:.4f}" == f"{self.post:.4f}"

    @property
    def arithmetic_agrees(self) -> bool | None:
        """Does the post's own arithmetic (from its rounded factors) reproduce its printed figure?"""
        if self.post_expr_value is None or self.post is None:
            return None
        return f"{self.post_expr_value:.4f}" == f"{self.post:.4f}"

    @property
    def rounding_only(self) -> bool:
        """The printed figure is right, and the post's own factors miss it by one unit in the 4th
        decimal only: a rounding artefact, not a slip."""
        if self.arithmetic_agrees is not False or not self.agrees:
            return False
        assert self.post_expr_value is not None and self.post is not None
        return abs(self.post_expr_value - self.post) <= 1.5e-4

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "agrees": self.agrees,
            "arithmetic_agrees": self.arithmetic_agrees,
            "rounding_only": self.rounding_only,
        }


@dataclass
class Erratum:
    """A slip in the post, with the correct value computed live by the library."""

    key: str
    where: str
    post_says: str
    correct: str
    post_value: float | None
    correct_value: float | None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RateRun:
    """Gradient descent at one learning rate: steps until ``E < tol`` for each tolerance."""

    lr: float
    iterations: dict[float, int | None]
    E_at: dict[int, float]
    E_final: float
    steps: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "lr": self.lr,
            "iterations": {f"{k:g}": v for k, v in self.iterations.items()},
            "E_at": {str(k): v for k, v in self.E_at.items()},
            "E_final": self.E_final,
            "steps": self.steps,
        }


@dataclass
class Convergence:
    tolerance: float
    tolerances: tuple[float, ...]
    max_iter: int
    runs: list[RateRun]
    post_iterations: int = POST_ITERATIONS
    near_post: list[tuple[float, float, int]] = field(default_factory=list)
    comment: str = ""

    def run_for(self, lr: float) -> RateRun:
        return next(r for r in self.runs if r.lr == lr)

    def to_dict(self) -> dict[str, Any]:
        return {
            "criterion": f"E < {self.tolerance:g} (full batch of the one sample, plain gradient descent, "
            "tied biases); iterations = gradient steps taken when E first falls below the tolerance",
            "tolerance": self.tolerance,
            "tolerances": list(self.tolerances),
            "max_iter": self.max_iter,
            "post_says": f"about {self.post_iterations} iterations",
            "runs": [r.to_dict() for r in self.runs],
            "near_post": [{"lr": a, "tolerance": b, "iterations": c} for a, b, c in self.near_post],
            "comment": self.comment,
        }


@dataclass
class ExampleResult:
    """Everything ``chainrule example`` prints; ``to_dict()`` is its ``--json`` object."""

    lr: float
    forward: list[Figure]
    chain: list[Figure]
    gradients: list[Figure]
    updated: list[Figure]
    errata: list[Erratum]
    convergence: Convergence | None
    paths_b1: dict[str, float]
    untied_b1: list[float]

    def figure(self, name: str) -> Figure:
        for f in (*self.forward, *self.chain, *self.gradients, *self.updated):
            if f.name == name:
                return f
        raise KeyError(name)

    def value(self, name: str) -> float:
        return self.figure(name).ours

    def erratum(self, key: str) -> Erratum:
        return next(e for e in self.errata if e.key == key)

    def to_dict(self) -> dict[str, Any]:
        return {
            "network": {
                "layers": [3, 2, 2],
                "activation": "sigmoid",
                "loss": "squared error E = ½ Σ (o − t)² (chainrule's batch mean with N = 1)",
                "x": X[0].tolist(),
                "t": T[0].tolist(),
                "weights": WEIGHTS,
                "b1": BIAS,
                "b2": BIAS,
                "tied_biases": "one b1 for both hidden units, one b2 for both outputs; "
                "tied gradient = sum of the per-unit gradients",
                "lr": self.lr,
            },
            "forward": [f.to_dict() for f in self.forward],
            "chain": [f.to_dict() for f in self.chain],
            "gradients": [f.to_dict() for f in self.gradients],
            "updated": [f.to_dict() for f in self.updated],
            "errata": [e.to_dict() for e in self.errata],
            "convergence": None if self.convergence is None else self.convergence.to_dict(),
            "b1_paths": self.paths_b1,
        }


def _post_expr(section: str, name: str) -> str:
    return next(e for n, _, e, _ in POST[section] if n == name) or ""


def _figures(section: str, ours: dict[str, float]) -> list[Figure]:
    out = []
    for name, printed, expr, note in POST[section]:
        out.append(
            Figure(
                name=name,
                ours=ours[name],
                post=printed,
                post_expr=expr,
                post_expr_value=None if expr is None else post_arithmetic(expr),
                note=note,
            )
        )
    return out


# -- convergence -----------------------------------------------------------------------------------
def converge(
    lr: float, tolerances: Sequence[float] = SCAN_TOLERANCES, max_iter: int = MAX_ITER, min_steps: int = 0
) -> RateRun:
    """Plain full-batch gradient descent with tied biases from the post's starting point.

    Runs until ``E`` is below every tolerance (and at least ``min_steps`` steps), or ``max_iter``.
    ``iterations[tol]`` is the number of steps after which ``E < tol`` held for the first time.
    """
    net = build_network()
    opt = SGD(lr)
    tols = sorted(tolerances, reverse=True)
    hits: dict[float, int | None] = {t: None for t in tols}
    E_at: dict[int, float] = {}
    marks = {100, 500, 1000, POST_ITERATIONS, 5000, 10000}
    step = 0
    while True:
        E = float(net.loss_and_grad(X, T))  # E(θ_step); grads at θ_step
        for t in tols:
            if hits[t] is None and E < t:
                hits[t] = step
        if step in marks:
            E_at[step] = E
        if (all(v is not None for v in hits.values()) and step >= min_steps) or step >= max_iter:
            break
        tie_bias_grads(net)
        opt.step(net.params)
        step += 1
    return RateRun(lr=float(lr), iterations=hits, E_at=E_at, E_final=E, steps=step)


def convergence_study(
    rates: Sequence[float] = RATES, tolerance: float = TOLERANCE, max_iter: int = MAX_ITER
) -> Convergence:
    tols = tuple(sorted(set(SCAN_TOLERANCES) | {tolerance}, reverse=True))
    runs = [converge(lr, tols, max_iter, min_steps=POST_ITERATIONS) for lr in rates]
    near = [
        (r.lr, t, n) for r in runs for t, n in r.iterations.items() if n is not None and 1000 <= n <= 2000
    ]
    near.sort(key=lambda c: abs(c[2] - POST_ITERATIONS))
    parts = []
    base = next((r for r in runs if r.lr == LR), None)
    if base is not None:
        n = base.iterations.get(tolerance)
        reach = f"takes {n} steps" if n is not None else f"is not reached within {max_iter} steps"
        parts.append(
            f"At the post's own α = {LR:g}, E < {tolerance:g} {reach}; after {POST_ITERATIONS} steps "
            f"E = {base.E_at.get(POST_ITERATIONS, float('nan')):.3g}."
        )
    if near:
        combos = "; ".join(f"α = {a:g} with E < {t:g} ({n} steps)" for a, t, n in near)
        parts.append(f"Rate/tolerance pairs landing at 1000-2000 steps (closest first): {combos}.")
        own = [t for a, t, _ in near if a == LR]
        if own:
            parts.append(
                f"At α = {LR:g} that is only the loose E < {max(own):g}, not convergence 'to the minimum "
                "error' (E → 0 here: sigmoid outputs can reach the targets)."
            )
        else:
            parts.append(f"None of them uses the post's α = {LR:g}.")
        parts.append(
            "The post's code image, which would settle its rate and stopping rule, is not in the text."
        )
    else:
        parts.append(
            f"No rate/tolerance tried lands within 1000-2000 steps of the post's ~{POST_ITERATIONS}."
        )
    return Convergence(
        tolerance=tolerance,
        tolerances=tols,
        max_iter=max_iter,
        runs=runs,
        near_post=near,
        comment=" ".join(parts),
    )


# -- the example -----------------------------------------------------------------------------------
def run_example(
    lr: float = LR,
    *,
    rates: Sequence[float] | None = RATES,
    tolerance: float = TOLERANCE,
    max_iter: int = MAX_ITER,
) -> ExampleResult:
    """Rebuild seed 002's example, run one pass and one step, compare every printed figure.

    ``rates=None`` (or empty) skips the convergence study (a few seconds at α = 0.01).
    """
    net = build_network()
    with trace(net) as tr:
        E = net.loss_and_grad(X, T)
        tr.record_loss(E, T)
        lt1, lt2 = tr.layers()
        untied_b1 = [float(v) for v in net.layers[0].b.grad]
        tie_bias_grads(net)
        grads = {name: param_value(net, name, grad=True) for name in PARAM_INDEX}
        before = {name: param_value(net, name) for name in PARAM_INDEX}
        tr.step(SGD(lr))
        after = {name: param_value(net, name) for name in PARAM_INDEX}

    zh, h, zo, o = lt1.z[0], lt1.a[0], lt2.z[0], lt2.a[0]
    forward = {
        "z_h1": zh[0],
        "h1": h[0],
        "z_h2": zh[1],
        "h2": h[1],
        "z_o1": zo[0],
        "o1": o[0],
        "z_o2": zo[1],
        "o2": o[1],
    }
    assert lt2.dE_da is not None and lt2.fprime is not None and lt1.fprime is not None
    assert lt2.dE_da_prev is not None and lt2.delta is not None and lt2.W is not None
    n = X.shape[0]  # chainrule's ∂E/∂o = (o − t)/N; N = 1 here
    chain = {
        "∂E/∂o1 = o1 − t1": lt2.dE_da[0, 0] * n,
        "∂E/∂o2 = o2 − t2": lt2.dE_da[0, 1] * n,
        "o1(1 − o1)": lt2.fprime[0, 0],
        "o2(1 − o2)": lt2.fprime[0, 1],
        "∂E/∂h1": lt2.dE_da_prev[0, 0],
        "∂E/∂h2": lt2.dE_da_prev[0, 1],
        "h1(1 − h1)": lt1.fprime[0, 0],
        "h2(1 − h2)": lt1.fprime[0, 1],
    }
    fig_forward = _figures("forward", {k: float(v) for k, v in forward.items()})
    fig_forward.append(Figure(name="E", ours=float(E), note="not printed by the post"))
    fig_chain = _figures("chain", {k: float(v) for k, v in chain.items()})
    fig_grads = _figures("gradients", {f"∂E/∂{k}": v for k, v in grads.items()})
    fig_updated = _figures("updated", after)

    # the four chain-rule paths from E to the shared b1: o_k → h_j → b1
    d_o, W2, fp_h = lt2.delta[0], lt2.W, lt1.fprime[0]
    paths = {f"o{k + 1}→h{j + 1}": float(d_o[k] * W2[j, k] * fp_h[j]) for k in range(2) for j in range(2)}
    errata = _errata(forward, chain, grads, before, after, paths, lr, fig_grads, fig_updated)
    conv = convergence_study(rates, tolerance, max_iter) if rates else None
    return ExampleResult(
        lr=lr,
        forward=fig_forward,
        chain=fig_chain,
        gradients=fig_grads,
        updated=fig_updated,
        errata=errata,
        convergence=conv,
        paths_b1=paths,
        untied_b1=untied_b1,
    )


def _errata(
    forward: dict[str, float],
    chain: dict[str, float],
    grads: dict[str, float],
    before: dict[str, float],
    after: dict[str, float],
    paths: dict[str, float],
    lr: float,
    fig_grads: list[Figure],
    fig_updated: list[Figure],
) -> list[Erratum]:
    """Every slip of the worked example, each with the library's value; then any other printed figure
    that disagrees with ours at 4 decimals (none expected beyond these)."""
    g = {f.name: f for f in fig_grads}
    u = {f.name: f for f in fig_updated}
    errata = [
        *_bias_gradient_errata(chain, grads["b1"], paths, g["∂E/∂b1"]),
        *_bias_update_errata(grads, before, after, lr, u),
        _z_o2_erratum(forward),
        _w10_erratum(grads["w10"]),
    ]
    listed = {"∂E/∂b1", "b1"}
    errata += [
        Erratum(
            key=f"figure {f.name}",
            where=f.name,
            post_says=f"{f.post}",
            correct=f"{f.ours:.6f}",
            post_value=f.post,
            correct_value=f.ours,
        )
        for f in (*fig_grads, *fig_updated)
        if f.agrees is False and f.name not in listed
    ]
    return errata


def _bias_gradient_errata(
    chain: dict[str, float], db1: float, paths: dict[str, float], printed: Figure
) -> list[Erratum]:
    """∂E/∂b1: two of its four chain-rule paths, and a mistyped factor on the same line."""
    two_paths = paths["o1→h1"] + paths["o2→h2"]
    typed = post_arithmetic(_post_expr("gradients", "∂E/∂b1"))
    retyped = post_arithmetic("0.7896 × 0.0983 × 0.7 × 0.0132 + 0.7504 × 0.1598 × 0.1 × 0.0049")
    return [
        Erratum(
            key="dE/db1",
            where="6 反向传播之倒二层, last line: ∂E/∂b1 = … = 0.0008",
            post_says="∂E/∂b1 = 0.0008 (two paths only: o1→h1 and o2→h2)",
            correct="∂E/∂b1 = Σ_j δ_hj = Σ_k Σ_j δ_ok w_jk h_j(1 − h_j): b1 feeds both hidden units, each "
            "reaching both outputs (four paths)",
            post_value=printed.post,
            correct_value=db1,
            detail="paths "
            + ", ".join(f"{k} {v:.6f}" for k, v in paths.items())
            + f"; the post's two paths sum to {two_paths:.6f}, all four to {sum(paths.values()):.6f}",
        ),
        Erratum(
            key="dE/db1 factor",
            where="same line: 0.7896 × 0.9983 × 0.7 × 0.0132",
            post_says=f"do1/dz_o1 typed as 0.9983; with it the line evaluates to {typed:.4f}, not the printed 0.0008",
            correct=f"do1/dz_o1 = o1(1 − o1) = {chain['o1(1 − o1)']:.4f} (the value the post uses elsewhere)",
            post_value=0.9983,
            correct_value=chain["o1(1 − o1)"],
            detail=f"post's typed arithmetic = {typed:.6f}; with 0.0983 it gives {retyped:.6f}. "
            "The same line also has a stray '+ ×' and writes dz_{2_1}/db_1 for dz_{h_2}/db_1.",
        ),
    ]


def _bias_update_errata(
    grads: dict[str, float],
    before: dict[str, float],
    after: dict[str, float],
    lr: float,
    u: dict[str, Figure],
) -> list[Erratum]:
    """The two bias updates: both start from 0.1 (the biases are 0.5); b1's printed result is wrong,
    b2's is right but sits under the label b_1."""

    def update(name: str, where: str, post_says: str, post_value: float | None, detail: str) -> Erratum:
        correct = f"{name} := 0.5 − {lr:g} × {grads[name]:.6f} = {after[name]:.6f}"
        return Erratum(f"{name} update", where, post_says, correct, post_value, after[name], detail)

    return [
        update(
            "b1",
            "b_1 := b_1 − α ∂E/∂b1 = 0.1 − 0.01 × 0.0008 = 0.0500",
            "starts from b1 = 0.1 (it is 0.5) and prints 0.0500, which is not even 0.1 − 0.000008 "
            f"= {post_arithmetic('0.1 − 0.01 × 0.0008'):.6f}",
            u["b1"].post,
            f"b1 before = {before['b1']:g}",
        ),
        update(
            "b2",
            "b_1 := b_2 − α ∂E/∂b2 = 0.1 − 0.01 × 0.1975 = 0.4980",
            "left side b_1 (should be b_2), starts from 0.1 (it is 0.5): 0.1 − 0.001975 = "
            f"{post_arithmetic('0.1 − 0.01 × 0.1975'):.6f}; only the printed result 0.4980 is right",
            u["b2"].post_expr_value,
            "post_value is the post's arithmetic as typed; its printed 0.4980 agrees with ours",
        ),
    ]


def _z_o2_erratum(forward: dict[str, float]) -> Erratum:
    z_o1_as_written = WEIGHTS["w7"] * forward["h1"] + WEIGHTS["w9"] * forward["h2"] + BIAS
    return Erratum(
        key="z_o2 label",
        where="3 计算hidden layer 和 output layer的值, fourth line pair",
        post_says="z_o1 = w7 h1 + w9 h2 + b2 = 0.8 × 0.9866 + 0.1 × 0.9950 + 0.5 = 1.3888; o1 = σ(z_o1) = 0.8004",
        correct=f"z_o2 = w8 h1 + w10 h2 + b2 = {forward['z_o2']:.6f}; o2 = σ(z_o2) = {forward['o2']:.6f}",
        post_value=z_o1_as_written,
        correct_value=forward["z_o2"],
        detail="post_value is the formula as written (w7, w9), which is z_o1, not 1.3888",
    )


def _w10_erratum(dw10: float) -> Erratum:
    return Erratum(
        key="w_10",
        where="2 隐藏层到输出层 and sections 5-6",
        post_says="w_10 (LaTeX renders it as w₁0: only the 1 is a subscript)",
        correct="w_{10}",
        post_value=None,
        correct_value=dw10,
        detail="textual; correct_value is ∂E/∂w10, which the post gets right (0.1193)",
    )


# -- rendering -------------------------------------------------------------------------------------
def _table(rows: list[list[str]], header: list[str], indent: str = "  ") -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    out = [indent + "  ".join(h.ljust(wd) for h, wd in zip(header, widths, strict=True)).rstrip()]
    out.append(indent + "  ".join("-" * wd for wd in widths))
    for r in rows:
        out.append(indent + "  ".join(c.ljust(wd) for c, wd in zip(r, widths, strict=True)).rstrip())
    return out


def _mark(f: Figure) -> str:
    return {True: "✓", False: "✗", None: " "}[f.agrees]


def _fig_rows(figs: list[Figure]) -> list[list[str]]:
    rows = []
    for f in figs:
        post = "—" if f.post is None else f"{f.post:.4f}"
        arith = "" if f.post_expr is None else f"{f.post_expr} = {f.post_expr_value:.4f}"
        notes = [f.note] if f.note else []
        if f.rounding_only:
            notes.append("rounding only: the post's rounded factors give another 4th decimal")
        elif f.arithmetic_agrees is False:
            notes.append("SLIP: the post's arithmetic does not give its printed figure")
        note = "; ".join(notes)
        rows.append([f.name, f"{f.ours:.6f}", post, _mark(f), arith, note])
    return rows


def render_text(res: ExampleResult) -> str:
    head = ["quantity", "chainrule", "post", "4dp", "the post's arithmetic, from its own figures", "note"]
    lines = [
        "Seed 002's worked example (这！就是深度学习之反向传播算法, 形象的例子), rebuilt with chainrule",
        "  network: x (1×3) → Dense(3→2) → Sigmoid → Dense(2→2) → Sigmoid → SquaredError, float64",
        f"  x = (1, 4, 5), t = (0.1, 0.05); w1..w9 = 0.1..0.9, w10 = 0.1; b1 = b2 = 0.5; α = {res.lr:g}",
        "  the post shares ONE b1 between both hidden units (and one b2 between both outputs): here each",
        "  Dense bias is the vector [b, b] and its tied gradient is the sum of the per-unit gradients.",
        "  ✓/✗: the post's printed figure equals chainrule's at 4 decimals.",
        "",
        "Forward pass",
        *_table(_fig_rows(res.forward), head),
        "",
        "Chain-rule factors (from the trace of the backward pass)",
        *_table(_fig_rows(res.chain), head),
        "",
        "Gradients",
        *_table(_fig_rows(res.gradients), head),
        f"  untied per-unit ∂E/∂b1: {res.untied_b1[0]:.6f}, {res.untied_b1[1]:.6f} "
        f"(sum {sum(res.untied_b1):.6f})",
        "",
        f"Parameters after one step (α = {res.lr:g}, tied biases)",
        *_table(_fig_rows(res.updated), head),
        "",
        f"Errata ({len(res.errata)})",
    ]
    for i, e in enumerate(res.errata, 1):
        pv = "—" if e.post_value is None else f"{e.post_value:.6g}"
        cv = "—" if e.correct_value is None else f"{e.correct_value:.6g}"
        lines += [
            f"  {i}. [{e.key}] {e.where}",
            f"     post:    {e.post_says}",
            f"     correct: {e.correct}",
            f"     value:   post {pv}  →  correct {cv} (computed by chainrule)",
        ]
        if e.detail:
            lines.append(f"     detail:  {e.detail}")
    if res.convergence is not None:
        c = res.convergence
        tols = (
            [t for t in c.tolerances if t >= c.tolerance]
            if c.tolerance in c.tolerances
            else list(c.tolerances)
        )
        lines += [
            "",
            f"Convergence: full batch (the one sample), plain gradient descent, tied biases; stop at "
            f"E < {c.tolerance:g} (max {c.max_iter} steps)",
        ]
        header = ["α", *[f"steps to E<{t:g}" for t in tols], f"E after {c.post_iterations}"]
        rows = []
        for r in c.runs:
            rows.append(
                [
                    f"{r.lr:g}",
                    *["—" if r.iterations[t] is None else str(r.iterations[t]) for t in tols],
                    f"{r.E_at.get(c.post_iterations, float('nan')):.3g}",
                ]
            )
        lines += _table(rows, header)
        lines += ["", "  The post: 'about 1500 iterations'. " + c.comment]
    return "\n".join(lines) + "\n"
