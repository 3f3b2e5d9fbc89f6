"""The layer-spec language: a network written as one line of words.

::

    conv:32:3 relu maxpool:2 conv:64:3 relu maxpool:2 flatten dense:128 relu dense:10
    lstm:128 last dense:10

Grammar (whitespace or commas separate words)::

    spec  := word (sep word)*
    word  := NAME (":" arg)*
    arg   := VALUE | KEY "=" VALUE          positional first, then by name

Every registered layer class that may appear in a spec declares its word in the class attribute
``spec``, a signature such as ``"dense:OUT"`` or ``"conv:OUT:K[:STRIDE[:PAD]]"`` (upper-case names
are arguments; bracketed ones are optional). The signature is at once the grammar, the help text and
the error message, so a new layer joins the language by declaring it; nothing here lists layers.
The class turns the parsed arguments into a layer with ``from_spec(args, input_shape, ctx)``; input
sizes (``D_in``, channels) are never written, they are inferred from the shape flowing in.

The first layer's ``input_rank`` (1 for rows, 2 for sequences ``(T, D)``, 3 for images
``(C, H, W)``) says what shape the data must be fed in; :func:`input_rank` reads it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from chainrule.errors import ConfigError, ShapeError
from chainrule.limits import LIMITS
from chainrule.nn.layer import LAYERS, Layer, SpecContext
from chainrule.nn.losses import get_loss
from chainrule.nn.model import Sequential

__all__ = [
    "SpecContext",
    "Word",
    "build",
    "input_rank",
    "parse",
    "signature",
    "spec_help",
    "word_classes",
]

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_SIG_ARG = re.compile(r"\[?:([A-Z][A-Z0-9_]*)\]*")


@dataclass(frozen=True)
class Word:
    """One parsed word: its layer class, its arguments by (lower-case) name, where it stood."""

    name: str
    cls: type[Layer]
    args: dict[str, str]
    position: int  # 1-based
    text: str

    def where(self) -> str:
        return f"word {self.position} {self.text!r}"


def signature(cls: type[Layer]) -> tuple[str, list[str], int]:
    """``(word, argument names, number required)`` from a class's ``spec`` signature."""
    sig = getattr(cls, "spec", "") or ""
    head = sig.split(":", 1)[0].split("[", 1)[0]
    rest = sig[len(head) :]
    names, required = [], 0
    for m in _SIG_ARG.finditer(rest):
        names.append(m.group(1).lower())
        if "[" not in rest[: m.start() + 1]:
            required += 1
    return head, names, required


def word_classes() -> dict[str, type[Layer]]:
    """Every word of the language and its layer class, read from the registry."""
    out: dict[str, type[Layer]] = {}
    for cls in LAYERS.values():
        if getattr(cls, "spec", ""):
            out[signature(cls)[0]] = cls
    return out


def spec_help() -> str:
    """The signatures of every word, for ``--help`` and error messages."""
    return " ".join(sorted(c.spec for c in word_classes().values()))


def _parse_word(text: str, position: int, words: dict[str, type[Layer]]) -> Word:
    name, *raw = text.split(":")
    if name not in words:
        near = f"; known words: {spec_help()}"
        raise ConfigError(f"--arch word {position} {text!r}: unknown layer {name!r}{near}")
    cls = words[name]
    _, names, required = signature(cls)
    args: dict[str, str] = {}
    for i, item in enumerate(raw):
        key, eq, value = item.partition("=")
        if eq:
            key = key.strip().lower()
            if key not in names:
                raise ConfigError(
                    f"--arch word {position} {text!r}: {name} has no argument {key!r}; expected {cls.spec}"
                )
        elif args.keys() - set(names[:i]):
            raise ConfigError(f"--arch word {position} {text!r}: positional argument after a named one")
        elif i >= len(names):
            raise ConfigError(f"--arch word {position} {text!r}: too many arguments; expected {cls.spec}")
        else:
            key, value = names[i], item
        if not value.strip() or key in args:
            raise ConfigError(
                f"--arch word {position} {text!r}: empty or repeated argument; expected {cls.spec}"
            )
        args[key] = value.strip()
    missing = [n for n in names[:required] if n not in args]
    if missing:
        raise ConfigError(
            f"--arch word {position} {text!r}: missing {', '.join(m.upper() for m in missing)}; "
            f"expected {cls.spec}"
        )
    return Word(name, cls, args, position, text)


def parse(spec: str) -> list[Word]:
    """Split and check a spec against the registry; raises :class:`ConfigError` naming the word."""
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"--arch needs at least one layer, e.g. 'dense:128 relu dense:10'; got {spec!r}")
    if len(spec) > 10_000:
        raise ConfigError(f"--arch is {len(spec)} characters long; at most 10000")
    words = word_classes()
    parsed = []
    for i, text in enumerate(re.split(r"[\s,]+", spec.strip()), start=1):
        if not _NAME.match(text.split(":", 1)[0]):
            raise ConfigError(f"--arch word {i} {text!r}: a word is name[:arg...], e.g. conv:32:3")
        parsed.append(_parse_word(text, i, words))
    return parsed


def input_rank(spec: str | list[Word]) -> int | None:
    """The per-sample rank the first shaped layer reads (1 rows, 2 sequences, 3 images); ``None``
    when no layer cares (element-wise layers only)."""
    for w in parse(spec) if isinstance(spec, str) else spec:
        rank = getattr(w.cls, "input_rank", None)
        if rank is not None:
            return int(rank)
    return None


def _has_state(cls: type[Layer]) -> bool:
    return getattr(cls.state_shapes, "__func__", None) is not getattr(Layer.state_shapes, "__func__", None)


def _init_for(words: list[Word], i: int, init: str) -> str:
    """``auto``: the default initialiser of the activation that follows word ``i`` (He before a
    ReLU, Xavier otherwise), as :func:`~chainrule.nn.builders.mlp` does."""
    if init != "auto":
        return init
    for w in words[i + 1 :]:
        if w.cls.elementwise:
            return w.cls.default_init
        if _has_state(w.cls):
            break
    return "xavier"


def _bounded_config(w: Word, shape: tuple[int, ...], budget: int) -> tuple[dict[str, Any], int]:
    """The word's config for input ``shape`` and its parameter/buffer count, checked against what is
    left of the budget before anything is allocated."""
    cfg = w.cls.spec_config(w.args, shape)
    count = sum(math.prod(s) for s in w.cls.state_shapes(cfg).values())
    if count > budget:
        raise ConfigError(f"needs {count} parameters, over the limit of {budget} left")
    return cfg, count


def build(
    spec: str,
    input_shape: tuple[int, ...],
    *,
    loss: str | None = "softmax-ce",
    seed: int | None = 0,
    dtype: Any = np.float32,
    init: str = "auto",
    max_params: int | None = None,
) -> Sequential:
    """A :class:`Sequential` from a spec, for samples of ``input_shape`` (no batch axis).

    Each word's config is worked out for the shape flowing in and its parameter count bounded
    (``max_params`` in all, default :data:`chainrule.limits.LIMITS` ``.max_params``, which the CLI's
    ``--max-params`` sets) before its weights exist; its ``output_shape`` is checked before the
    next word, so a kernel larger than its input, or pooling below 1×1, is an error naming the word.
    Weights come from NumPy's generator seeded with ``seed``; ``init="auto"`` picks each weight
    layer's initialiser from the activation after it.

    >>> net = build("dense:32 relu dense:10", (784,))
    """
    words = parse(spec)
    shape = tuple(int(s) for s in input_shape)
    if not shape or min(shape) < 1:
        raise ShapeError(f"input shape must be positive sizes, got {tuple(input_shape)}")
    rng = np.random.default_rng(seed)
    layers: list[Layer] = []
    budget = int(LIMITS.max_params if max_params is None else max_params)
    for i, w in enumerate(words):
        try:
            cfg, count = _bounded_config(w, shape, budget)
            layer = w.cls.from_spec(cfg, SpecContext(rng=rng, dtype=dtype, init=_init_for(words, i, init)))
            new_shape = tuple(int(d) for d in layer.output_shape(shape))
        except (ConfigError, ShapeError) as exc:
            raise type(exc)(f"--arch {w.where()} on samples of shape {shape}: {exc}") from None
        if not new_shape or min(new_shape) < 1:
            raise ShapeError(f"--arch {w.where()}: samples of shape {shape} give an empty output {new_shape}")
        budget -= count
        layers.append(layer)
        shape = new_shape
    loss_obj = get_loss(loss) if loss is not None else None
    return Sequential(layers, loss=loss_obj, input_shape=tuple(int(s) for s in input_shape))
