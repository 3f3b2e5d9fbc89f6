"""Train an MLP end to end: data, checks, the network, :func:`~chainrule.train.loop.fit`, the test
evaluation, and the outputs asked for (model, plot, run record, HTML report); returns the
:class:`~chainrule.report.record.RunRecord` of the run."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from chainrule.backend import get_backend
from chainrule.backend.threads import limit_threads
from chainrule.errors import ConfigError, ShapeError
from chainrule.io.serialize import save
from chainrule.jobs.common import Log, check_outputs, load_dataset, require_packages, say
from chainrule.nn.builders import mlp
from chainrule.nn.spec import build as build_spec
from chainrule.nn.spec import input_rank
from chainrule.report.html import write_report
from chainrule.report.plots import plot_history
from chainrule.report.record import Evaluation, RunRecord
from chainrule.train import evaluate, fit
from chainrule.train.flow import GradientFlow

__all__ = ["TrainConfig", "default_lr", "run_train"]


@dataclass
class TrainConfig:
    """What ``chainrule train`` is asked to do; field names are its options (``--data-dir`` is
    ``data_dir``), ``progress`` is the opposite of ``--quiet``. ``layers=None`` means
    ``D,256,128,K`` from the data, ``lr=None`` the optimiser's default (:func:`default_lr`)."""

    data: str = "default"
    data_dir: str | None = None
    download: bool = False
    target: str | None = None
    layers: list[int] | None = None
    arch: str | None = None
    activation: str = "relu"
    output_activation: str = "auto"
    loss: str = "softmax-ce"
    optimizer: str = "sgd"
    lr: float | None = None
    momentum: float = 0.9
    batch_size: int = 128
    epochs: int = 5
    l2: float = 0.0
    init: str = "auto"
    seed: int = 0
    dtype: str = "float32"
    validation_split: float = 0.0
    early_stopping: int | None = None
    backend: str | None = None
    device: str | None = None
    threads: int | None = None
    plain: bool = False
    save: str | None = None
    plot: str | None = None
    log: str | None = None
    report: str | None = None
    flow_interval: int | None = None
    progress: bool = True


def default_lr(optimizer: str) -> float:
    """The learning rate used when none is given: 0.001 for Adam, 0.1 otherwise."""
    return 0.001 if optimizer == "adam" else 0.1


def run_train(cfg: TrainConfig, *, log: Log = None) -> RunRecord:
    """Run ``cfg``: everything that can fail early (backend, output folders, optional packages, the
    data, the layer sizes) fails before training. ``log`` receives status lines (the dataset)."""
    backend = get_backend(cfg.backend, cfg.device)
    check_outputs(
        {"--save": cfg.save, "--plot": cfg.plot, "--log": cfg.log, "--report": cfg.report},
        {"--data": cfg.data, "--data-dir": cfg.data_dir},
    )
    require_packages(
        [
            ("safetensors", "--save", "cli", cfg.save),
            ("matplotlib", "--plot/--report", "plot", cfg.plot or cfg.report),
        ]
    )
    data = load_dataset(
        cfg.data,
        cfg.data_dir,
        target=cfg.target,
        download=cfg.download,
        seed=cfg.seed,
        progress=cfg.progress,
        min_classes=2,
    )
    say(log, data.summary())
    lr = cfg.lr if cfg.lr is not None else default_lr(cfg.optimizer)
    if cfg.arch is not None:
        layers = None
        net = _arch_net(cfg, data)
    else:
        layers = _layers(cfg, data.n_features, data.n_classes)
        net = mlp(
            layers,
            cfg.activation,
            loss=cfg.loss,
            output_activation=cfg.output_activation,
            init=cfg.init,
            seed=cfg.seed,
            dtype=np.dtype(cfg.dtype),
        )
    net.to(backend, cfg.dtype)
    flow = None
    if cfg.flow_interval or cfg.report or cfg.log:
        flow = GradientFlow(**({"interval": cfg.flow_interval} if cfg.flow_interval else {}))
    with limit_threads(cfg.threads):
        history = _fit(cfg, net, data, lr, flow)
        ev = None
        if data.n_test:
            ev = evaluate(net, backend.asarray(data.x_test, dtype=cfg.dtype), backend.asarray(data.y_test))
    config = asdict(cfg)
    config.update(layers=layers, lr=lr, backend=str(backend), runner=history.runner, dataset=data.name)
    record = RunRecord(
        config=config,
        history=history,
        evaluation=None if ev is None else Evaluation.from_result(ev),
        gradient_flow=None if flow is None else flow.to_dict(),
    )
    _write_outputs(cfg, record, net, data)
    return record


def _arch_net(cfg: TrainConfig, data: Any) -> Any:
    """The ``--arch`` network, fed the data's samples in the shape its first layer reads: rows,
    images ``(C, H, W)`` or sequences ``(T, D)`` (see :func:`sample_shape_for`)."""
    if cfg.layers is not None:
        raise ConfigError("give either --arch or --layers, not both")
    shape = sample_shape_for(input_rank(cfg.arch), data.sample_shape, getattr(data, "image_shape", None))
    net = build_spec(cfg.arch, shape, loss=cfg.loss, seed=cfg.seed, dtype=np.dtype(cfg.dtype), init=cfg.init)
    out = net.output_shape()
    binary_single = cfg.loss in ("bce", "squared") and out == (1,) and data.n_classes == 2
    if out != (data.n_classes,) and not binary_single:
        raise ConfigError(f"--arch gives outputs of shape {out} but the data has {data.n_classes} classes")
    return net


def sample_shape_for(
    rank: int | None, have: tuple[int, ...], image_shape: tuple[int, ...] | None = None
) -> tuple[int, ...]:
    """The per-sample shape to feed a network whose first layer reads ``rank`` axes, from data whose
    samples have shape ``have``: unchanged when the ranks agree; flat rows of ``S·S`` values become
    ``(1, S, S)`` images (rank 3) or ``S`` steps of ``S`` values (rank 2, a digit row by row);
    ``image_shape`` overrides the square guess. Anything else is a :class:`ShapeError`."""
    if rank is None or rank == len(have):
        return tuple(have)
    n = math.prod(have)
    if rank == 1:
        return (n,)
    if image_shape is not None and math.prod(image_shape) == n:
        shape = tuple(image_shape)
        return shape if rank == 3 else shape[-2:] if rank == 2 and shape[0] == 1 else shape
    side = math.isqrt(n)
    if side * side == n and rank in (2, 3):
        return (1, side, side) if rank == 3 else (side, side)
    what = "(C, H, W) images" if rank == 3 else "(T, D) sequences"
    raise ShapeError(f"samples of {n} values do not factor into the {what} the first --arch layer reads")


def _layers(cfg: TrainConfig, n_features: int, n_classes: int) -> list[int]:
    layers = cfg.layers or [n_features, 256, 128, n_classes]
    if layers[0] != n_features:
        raise ConfigError(f"--layers starts with {layers[0]} inputs but the data has {n_features} features")
    binary_single = cfg.loss in ("bce", "squared") and layers[-1] == 1 and n_classes == 2
    if layers[-1] != n_classes and not binary_single:
        raise ConfigError(f"--layers ends with {layers[-1]} outputs but the data has {n_classes} classes")
    return list(layers)


def _fit(cfg: TrainConfig, net: Any, data: Any, lr: float, flow: GradientFlow | None) -> Any:
    opt_kwargs: dict[str, Any] = (
        {"momentum": cfg.momentum} if cfg.optimizer in ("momentum", "nesterov") else {}
    )
    return fit(
        net,
        data.x_train,
        data.y_train,
        optimizer=cfg.optimizer,
        lr=lr,
        batch_size=cfg.batch_size,
        epochs=cfg.epochs,
        l2=cfg.l2,
        seed=cfg.seed,
        validation_split=cfg.validation_split,
        early_stopping=cfg.early_stopping,
        callbacks=[] if flow is None else [flow],
        progress=cfg.progress,
        fast=not cfg.plain,
        **opt_kwargs,
    )


def _write_outputs(cfg: TrainConfig, record: RunRecord, net: Any, data: Any) -> None:
    if cfg.save:
        info = {
            "class_names": data.class_names,
            "n_classes": data.n_classes,
            "dataset": data.name,
            "train_config": record.config,
        }
        save(net, cfg.save, info=info)
    if cfg.plot:
        plot_history(record.history, cfg.plot)
    if cfg.log:
        record.save(cfg.log)
    if cfg.report:
        write_report(record, cfg.report)
