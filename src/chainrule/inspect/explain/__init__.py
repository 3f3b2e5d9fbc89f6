"""Explain one training step of a small network: forward, backward layer by layer, update.

:func:`explain` runs one forward/backward pass under a :class:`~chainrule.inspect.trace.Tracer`, checks every
``∂E/∂a^l``, ``δ^l``, ``∂E/∂W^l`` and ``∂E/∂b^l`` against central differences, takes one SGD step
and returns an :class:`Explanation` (data). Three renderers turn it into text:

* :func:`render_text`: aligned terminal tables, each step with its formula, the numbers
  substituted and the gradient check beside the result;
* :func:`render_markdown`: the same with LaTeX math (``$...$`` and ``$$...$$``, which GitHub renders);
* :func:`to_json`: a JSON-safe ``dict``.

The formulas are the seeds' back-propagation equations (seed 004's BP1-BP3, seed 001's δ), each in
the seeds' column form and in the row form chainrule computes (rows are samples)::

    δ^L = ∇_a E ⊙ f'(z^L)
    δ^l = ((W^{l+1})ᵀ δ^{l+1}) ⊙ f'(z^l)        column form (seeds)
    δ^l = (δ^{l+1} (W^{l+1})ᵀ) ⊙ f'(z^l)        row form (chainrule: one row per sample)
    ∂E/∂W^l = (a^{l-1})ᵀ δ^l                      ∂E/∂b^l = Σ_rows δ^l

What each layer and the loss contribute (``σ``, ``f'(z) = a ⊙ (1 − a)``, ``E = ...``, ``δ^L = ...``)
is read from their classes' ``symbol``, ``formula``, ``derivative`` and ``delta`` templates
(:mod:`~chainrule.inspect.explain.notation`); nothing here keeps a table of them, so a new layer or
loss class explains itself.

A step-by-step explanation is only readable for small networks: :func:`check_size` refuses more than
:data:`LIMITS` (units per layer, parameters, batch rows) with :class:`TooLargeError`, which points
to :func:`summarize` (per-layer norms and a sampled gradient check, any size; ``--summary``).

Modules: :mod:`.data` (the records), :mod:`.notation` (formulas from the classes), :mod:`.compute`
(:func:`explain`, :func:`summarize`), :mod:`.blocks` (numbers and matrices as text and LaTeX),
:mod:`.text`, :mod:`.markdown`, :mod:`.jsonview`, :mod:`.summary` and :mod:`.formats` (the renderers).
"""

from __future__ import annotations

from chainrule.inspect.explain.compute import check_size, explain, summarize
from chainrule.inspect.explain.data import EPS, LIMITS, Explanation, NumericCheck, Summary, TooLargeError
from chainrule.inspect.explain.formats import render
from chainrule.inspect.explain.jsonview import to_json
from chainrule.inspect.explain.markdown import render_markdown
from chainrule.inspect.explain.notation import GroupNotation, LayerNotation, LossNotation
from chainrule.inspect.explain.summary import render_summary
from chainrule.inspect.explain.text import render_text

__all__ = [
    "EPS",
    "LIMITS",
    "Explanation",
    "GroupNotation",
    "LayerNotation",
    "LossNotation",
    "NumericCheck",
    "Summary",
    "TooLargeError",
    "check_size",
    "explain",
    "render",
    "render_markdown",
    "render_summary",
    "render_text",
    "summarize",
    "to_json",
]
