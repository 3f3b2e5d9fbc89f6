"""The layer contract and the registry of layer kinds."""

from __future__ import annotations

from typing import Any, ClassVar, Protocol

import numpy as np

from chainrule.backend import Backend
from chainrule.errors import ConfigError
from chainrule.nn.params import Param

__all__ = ["LAYERS", "Hook", "Layer", "layer_from_config", "register_layer"]


class Layer:
    """Base class of every layer. Subclasses implement ``forward`` and ``backward``.

    Class attributes:
        kind: the registry name used in saved architectures (``"dense"``, ``"relu"`` ...).
    """

    kind: ClassVar[str] = ""
    params: list[Param]

    def __init__(self) -> None:
        self.params = []

    # -- the contract ----------------------------------------------------------------------
    def forward(self, x: Any) -> Any:
        raise NotImplementedError

    def backward(self, dy: Any, *, need_dx: bool = True) -> Any:
        """Return ``∂E/∂x`` given ``dy = ∂E/∂y``; accumulate parameter gradients.

        ``need_dx=False`` lets the first layer of a network skip computing a gradient nobody
        reads (it then returns ``None``); layers without that saving ignore it.
        """
        raise NotImplementedError

    # -- shape and serialisation -----------------------------------------------------------
    def output_dim(self, input_dim: int) -> int:
        """Feature dimension of the output for a given input dimension (identity by default)."""
        return input_dim

    def config(self) -> dict[str, Any]:
        """JSON-safe description from which :func:`layer_from_config` rebuilds the layer."""
        return {"type": self.kind}

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"

    def to(self, backend: Backend, dtype: Any = None) -> Layer:
        """Move parameters (and their gradients) to ``backend`` in place; returns ``self``."""
        for p in self.params:
            p.value = backend.asarray(p.value, dtype=dtype)
            p.grad = backend.xp.zeros_like(p.value)
        return self


LAYERS: dict[str, type[Layer]] = {}


def register_layer(cls: type[Layer]) -> type[Layer]:
    """Class decorator: make a layer buildable from its config and covered by the test registry."""
    if not cls.kind:
        raise TypeError(f"{cls.__name__} needs a 'kind' to be registered")
    LAYERS[cls.kind] = cls
    return cls


def layer_from_config(cfg: dict[str, Any], dtype: Any = np.float32) -> Layer:
    """Rebuild a layer (with placeholder parameters) from :meth:`Layer.config`."""
    if not isinstance(cfg, dict) or "type" not in cfg:
        raise ConfigError(f"a layer description must be an object with a 'type', got {cfg!r}")
    kind = cfg["type"]
    if kind not in LAYERS:
        raise ConfigError(f"unknown layer type {kind!r}; known: {', '.join(sorted(LAYERS))}")
    kwargs = {k: v for k, v in cfg.items() if k != "type"}
    try:
        return LAYERS[kind].from_config(kwargs, dtype)  # type: ignore[attr-defined]
    except AttributeError:
        try:
            return LAYERS[kind](**kwargs)
        except TypeError as exc:
            raise ConfigError(f"bad options for layer {kind!r}: {exc}") from None


class Hook(Protocol):
    """Something that watches the driver: see :mod:`chainrule.inspect.trace`."""

    def on_forward(self, index: int, layer: Layer, x: Any, y: Any) -> None: ...

    def on_backward(self, index: int, layer: Layer, dy: Any, dx: Any) -> None: ...
