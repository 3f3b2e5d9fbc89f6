"""The explanation as a JSON-safe ``dict``: every array as nested lists, every formula filled in."""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.inspect.explain.data import EPS, Explanation
from chainrule.inspect.explain.notation import fill
from chainrule.inspect.explain.text import out_symbol
from chainrule.inspect.trace import LayerTrace

__all__ = ["FORMULAS", "to_json"]

#: the seeds' back-propagation equations in chainrule's row form (the ``formulas`` entry)
FORMULAS = {
    "delta_L": "δ^L = ∇_a E ⊙ f'(z^L)",
    "delta_l_columns": "δ^l = ((W^{l+1})ᵀ δ^{l+1}) ⊙ f'(z^l)",
    "delta_l_rows": "δ^l = (δ^{l+1} (W^{l+1})ᵀ) ⊙ f'(z^l)",
    "dW": "∂E/∂W^l = (a^{l-1})ᵀ δ^l",
    "db": "∂E/∂b^l = Σ_rows δ^l",
    "update": "θ ← θ − α ∂E/∂θ",
}


def _arr(a: Any) -> Any:
    return None if a is None else np.asarray(a, dtype=np.float64).tolist()


def to_json(ex: Explanation) -> dict[str, Any]:
    """The explanation as a JSON-safe dict."""
    o = out_symbol(ex.layers[-1])
    ln = ex.notation_of_loss()
    loss = {
        "name": ex.loss,
        "E": ex.E,
        "output": _arr(ex.out),
        "probabilities": _arr(ex.probabilities),
        "formula": fill(ln.formula, o=o),
        "formula_latex": fill(ln.formula_latex, o=o.replace("^", "^{") + "}"),
        "delta": fill(ln.delta, o=o),
        "delta_latex": fill(ln.delta_latex, o=o.replace("^", "^{") + "}"),
    }
    return {
        "network": ex.network,
        "layout": "rows are samples: z^l = a^(l-1) W^l + b^l (seeds: z^l = W^l a^(l-1) + b^l)",
        "input": _arr(ex.x),
        "target": _arr(ex.t),
        "loss": loss,
        "forward": [_forward(lt) for lt in ex.layers],
        "backward": [_backward(ex, lt) for lt in ex.layers],
        "formulas": dict(FORMULAS),
        "updates": [
            {"name": u.name, "l": u.l, "before": _arr(u.before), "grad": _arr(u.grad), "after": _arr(u.after)}
            for u in ex.updates
        ],
        "lr": ex.lr,
        "gradcheck": {
            "eps": EPS,
            "errors": ex.gradcheck.errors,
            "max_error": ex.gradcheck.max_error,
            "tolerance": ex.gradcheck.tolerance,
            "ok": ex.ok,
        },
        "notes": ex.notes,
    }


def _forward(lt: LayerTrace) -> dict[str, Any]:
    return {
        "l": lt.l,
        "layer": lt.label,
        "activation": lt.activation,
        "a_prev": _arr(lt.a_prev),
        "W": _arr(lt.W),
        "b": _arr(lt.b),
        "z": _arr(lt.z),
        "a": _arr(lt.a),
        "shapes": {k: list(v) for k, v in lt.shapes.items()},
    }


def _backward(ex: Explanation, lt: LayerTrace) -> dict[str, Any]:
    single = ex.notation_of(lt).single
    at = {"l": lt.l, "p": lt.l - 1}
    return {
        "l": lt.l,
        "dE_da": _arr(lt.dE_da),
        "fprime": _arr(lt.fprime),
        "fprime_formula": None if single is None else fill(single.derivative, **at),
        "fprime_formula_latex": None if single is None else fill(single.derivative_latex, **at),
        "delta": _arr(lt.delta),
        "dW": _arr(lt.dW),
        "db": _arr(lt.db),
        "norms": lt.norms,
        "gradcheck": {
            k: {"numeric": _arr(c.numeric), "rel_error": c.rel_error, "ok": c.ok}
            for k, c in ex.checks.get(lt.l, {}).items()
        },
    }
