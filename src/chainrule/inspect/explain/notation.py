"""How an explanation writes each layer and the loss: read from the classes, never from a table here.

Every layer class carries ``symbol``/``symbol_latex`` (its name inside a formula), ``formula``/
``formula_latex`` and ``derivative``/``derivative_latex``; every loss class ``formula``/
``formula_latex`` and ``delta``/``delta_latex`` (:class:`~chainrule.nn.layer.Layer`,
:class:`~chainrule.nn.losses.Loss`). Their templates may name ``%(l)s`` (the layer index), ``%(p)s``
(the previous layer's) and, in a loss, ``%(o)s`` (the output symbol, ``a^L`` or ``z^L``).
:func:`fill` substitutes them and hands back anything else as written, and every attribute a class
leaves empty falls back to its kind, so a new or unregistered class explains itself without a
``KeyError``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from chainrule.nn.layer import LAYERS
from chainrule.nn.losses import LOSSES
from chainrule.nn.model import LayerGroup

__all__ = ["GroupNotation", "LayerNotation", "LossNotation", "fill", "operatorname"]


_PLACEHOLDER = re.compile(r"%\((\w+)\)s|%%")


def fill(template: str, **values: Any) -> str:
    """``template % values`` for the placeholders named in ``values`` (``%%`` reads ``%``); any other
    ``%`` (a stray one, an unknown name) is left as written, so no template can break a rendering."""

    def one(m: re.Match[str]) -> str:
        if m.group(0) == "%%":
            return "%"
        return str(values[m.group(1)]) if m.group(1) in values else m.group(0)

    return _PLACEHOLDER.sub(one, template)


def operatorname(name: str) -> str:
    """``\\operatorname{name}`` with underscores escaped (the LaTeX fallback for a symbol)."""
    return "\\operatorname{" + name.replace("_", "\\_") + "}"


@dataclass(frozen=True)
class LayerNotation:
    """One layer class's symbol, formula and derivative templates (empty ones filled by fallbacks)."""

    kind: str
    symbol: str
    symbol_latex: str
    formula: str
    formula_latex: str
    derivative: str
    derivative_latex: str

    @classmethod
    def of(cls, layer: Any) -> LayerNotation:
        """From a layer or a layer class: its class attributes, the kind where one is empty."""
        c = layer if isinstance(layer, type) else type(layer)
        kind = getattr(c, "kind", "") or c.__name__.lower()
        return cls._build(kind, **{k: str(getattr(c, k, "") or "") for k in _LAYER_ATTRS})

    @classmethod
    def of_kind(cls, kind: str) -> LayerNotation:
        """From the registry by kind; an unknown kind gets the fallbacks alone."""
        c = LAYERS.get(kind)
        return cls.of(c) if c is not None else cls._build(kind)

    @classmethod
    def _build(cls, kind: str, **attrs: str) -> LayerNotation:
        symbol = attrs.get("symbol") or kind
        tex = attrs.get("symbol_latex") or operatorname(symbol)
        return cls(
            kind=kind,
            symbol=symbol,
            symbol_latex=tex,
            formula=attrs.get("formula") or f"y = {symbol}(x)",
            formula_latex=attrs.get("formula_latex") or f"y = {tex}(x)",
            derivative=attrs.get("derivative") or f"{symbol}'(z^%(l)s)",
            derivative_latex=attrs.get("derivative_latex") or f"{tex}'(z^{{%(l)s}})",
        )

    def defines_z(self, latex: bool = False) -> str | None:
        """The right-hand side of the formula template when its left-hand side names layer ``l``
        (``z^%(l)s = a^%(p)s W^%(l)s + b^%(l)s``), else None (the renderer writes ``symbol(a^p)``)."""
        lhs, sep, rhs = (self.formula_latex if latex else self.formula).partition(" = ")
        return rhs if sep and "%(l)s" in lhs else None


_LAYER_ATTRS = ("symbol", "symbol_latex", "formula", "formula_latex", "derivative", "derivative_latex")


@dataclass(frozen=True)
class GroupNotation:
    """Seed-style layer ``l``: its head (the layer with parameters) and the activations after it."""

    head: LayerNotation
    activations: tuple[LayerNotation, ...] = ()

    @classmethod
    def of(cls, group: LayerGroup) -> GroupNotation:
        return cls(LayerNotation.of(group.head), tuple(LayerNotation.of(a) for a in group.activations))

    @classmethod
    def of_kinds(cls, head: str, activation: str) -> GroupNotation:
        """From a trace's ``kind`` and ``activation`` (``"relu+softmax"``, ``"none"``)."""
        acts = () if activation == "none" else tuple(LayerNotation.of_kind(k) for k in activation.split("+"))
        return cls(LayerNotation.of_kind(head), acts)

    @property
    def single(self) -> LayerNotation | None:
        """The activation when there is exactly one (the one whose ``f'(z)`` is traced)."""
        return self.activations[0] if len(self.activations) == 1 else None

    def apply(self, z: str, latex: bool = False) -> str:
        """``a`` in terms of ``z``: ``σ(z^1)``, or nested for several activations."""
        for a in self.activations:
            z = f"{a.symbol_latex if latex else a.symbol}({z})"
        return z


@dataclass(frozen=True)
class LossNotation:
    """One loss class's templates, and the symbol of the activation fused into it (if any)."""

    name: str
    formula: str
    formula_latex: str
    delta: str
    delta_latex: str
    fused: LayerNotation | None = None

    @classmethod
    def of(cls, loss: Any) -> LossNotation:
        """From a loss or a loss class: its class attributes, generic forms where one is empty."""
        c = loss if isinstance(loss, type) else type(loss)
        name = getattr(c, "name", "") or c.__name__.lower()
        return cls._build(
            name, getattr(c, "fused", None), **{k: str(getattr(c, k, "") or "") for k in _LOSS_ATTRS}
        )

    @classmethod
    def of_name(cls, name: str) -> LossNotation:
        """From the registry by name; an unknown name gets the generic forms."""
        c = LOSSES.get(name)
        return cls.of(c) if c is not None else cls._build(name, None)

    @classmethod
    def _build(cls, name: str, fused: Any, **attrs: str) -> LossNotation:
        return cls(
            name=name,
            formula=attrs.get("formula") or f"E = {name}(%(o)s, y)",
            formula_latex=attrs.get("formula_latex") or f"E = {operatorname(name)}(%(o)s, y)",
            delta=attrs.get("delta") or "∂E/∂%(o)s",
            delta_latex=attrs.get("delta_latex") or "\\frac{\\partial E}{\\partial %(o)s}",
            fused=LayerNotation.of_kind(str(fused)) if fused else None,
        )


_LOSS_ATTRS = ("formula", "formula_latex", "delta", "delta_latex")
