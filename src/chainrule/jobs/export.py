"""Export a saved model to ONNX, with its feature scaling and output mapping inside the graph.

The graph reads raw feature rows ``x`` ``(N, D)`` float32 and computes::

    x' = (x − shift) · factor                       the stored scaler (skipped for "none")
    h  = f_l(h W_l + b_l)   for each Dense + activation
    scores        = the network's output             (N, K)
    probabilities = softmax(scores) / sigmoid(scores)   a classifier (the loss's fused activation)
    prediction    = scores / factor_y + shift_y          a regressor, in the target's units

Dense, flatten and the element-wise activations with an ONNX operator (identity, sigmoid, tanh,
relu, leaky_relu, softplus, softmax) are mapped; any other layer is refused with a message naming it (CNN
layers will be added where they are defined). Checked against onnxruntime in ``tests/test_export.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from chainrule._io import atomic_write_bytes
from chainrule.errors import ConfigError, MissingDependencyError
from chainrule.jobs.common import check_writable
from chainrule.jobs.tabular import ModelInfo, load_model
from chainrule.nn.model import Sequential

__all__ = ["ExportConfig", "ExportResult", "run_export", "to_onnx"]

OPSET = 17
_ACTS = {"sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "Relu", "softplus": "Softplus"}


@dataclass
class ExportConfig:
    model: str
    onnx: str


@dataclass
class ExportResult:
    path: str
    outputs: list[str]
    nodes: int


def _onnx() -> Any:
    try:
        import onnx  # optional: the onnx extra, only for export
    except ImportError as exc:
        raise MissingDependencyError("onnx", "ONNX export", "onnx") from exc
    return onnx


class _Graph:
    """Nodes and constants of the graph being built."""

    def __init__(self, onnx: Any) -> None:
        self.onnx, self.nodes, self.inits, self.n = onnx, [], [], 0

    def const(self, value: np.ndarray, hint: str) -> str:
        name = f"{hint}_{len(self.inits)}"
        self.inits.append(self.onnx.numpy_helper.from_array(np.asarray(value, dtype=np.float32), name))
        return name

    def op(self, op: str, inputs: list[str], out: str | None = None, **attrs: Any) -> str:
        self.n += 1
        out = out or f"t{self.n}"
        self.nodes.append(self.onnx.helper.make_node(op, inputs, [out], **attrs))
        return out


def _layer(g: _Graph, layer: Any, h: str) -> str:
    kind = layer.kind
    if kind == "dense":
        return g.op("Add", [g.op("MatMul", [h, g.const(layer.W.value, "W")]), g.const(layer.b.value, "b")])
    if kind == "identity":
        return h
    if kind == "flatten":
        return g.op("Flatten", [h], axis=1)
    if kind in _ACTS:
        return g.op(_ACTS[kind], [h])
    if kind == "leaky_relu":
        return g.op("LeakyRelu", [h], alpha=float(layer.alpha))
    if kind == "softmax":
        return g.op("Softmax", [h], axis=1)
    raise ConfigError(
        f"ONNX export does not support layer {kind!r} yet (dense and element-wise activations only)"
    )


def to_onnx(net: Sequential, minfo: ModelInfo) -> tuple[bytes, list[str]]:
    """The serialised ONNX model of ``net`` with ``minfo``'s preprocessing, and its output names."""
    onnx = _onnx()
    g = _Graph(onnx)
    d = net.input_dim
    if d is None:
        raise ConfigError("ONNX export needs a model with a known input width")
    h = "x"
    sc = minfo.scaler
    if sc is not None and sc.kind != "none":
        h = g.op("Mul", [g.op("Sub", [h, g.const(sc.shift, "shift")]), g.const(sc.factor, "factor")])
    for layer in net.layers:
        h = _layer(g, layer, h)
    k = net.output_dim() or 1
    outputs = ["scores"]
    g.op("Identity", [h], "scores")
    if minfo.task == "regress":
        ts = minfo.target_scaler
        y = (
            h
            if ts is None
            else g.op("Add", [g.op("Div", [h, g.const(ts.factor, "yfactor")]), g.const(ts.shift, "yshift")])
        )
        g.op("Identity", [y], "prediction")
        outputs.append("prediction")
    elif net.loss is not None and net.loss.fused in ("softmax", "sigmoid"):
        g.op(
            "Softmax" if net.loss.fused == "softmax" else "Sigmoid",
            [h],
            "probabilities",
            **({"axis": 1} if net.loss.fused == "softmax" else {}),
        )
        outputs.append("probabilities")
    T = onnx.TensorProto.FLOAT
    graph = onnx.helper.make_graph(
        g.nodes,
        "chainrule_mlp",
        [onnx.helper.make_tensor_value_info("x", T, ["N", d])],
        [onnx.helper.make_tensor_value_info(name, T, ["N", k]) for name in outputs],
        initializer=g.inits,
    )
    model = onnx.helper.make_model(
        graph, opset_imports=[onnx.helper.make_opsetid("", OPSET)], producer_name="chainrule"
    )
    model.ir_version = min(model.ir_version, 8)
    onnx.checker.check_model(model)
    return model.SerializeToString(), outputs


def run_export(cfg: ExportConfig) -> ExportResult:
    check_writable(cfg.onnx)
    if cfg.onnx == cfg.model:
        raise ConfigError("--onnx would overwrite the model file")
    net, minfo = load_model(cfg.model)
    data, outputs = to_onnx(net, minfo)
    atomic_write_bytes(cfg.onnx, data)
    return ExportResult(cfg.onnx, outputs, len(net.layers))
