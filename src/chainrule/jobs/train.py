"""Train an MLP end to end: data, checks, the network, :func:`~chainrule.train.loop.fit`, the test
evaluation, and the outputs asked for (model, plot, run record, HTML report); returns the
:class:`~chainrule.report.record.RunRecord` of the run."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from chainrule.backend import get_backend
from chainrule.backend.threads import limit_threads
from chainrule.errors import ConfigError, ShapeError
from chainrule.io.augment import augment
from chainrule.io.scaling import fit_scaler
from chainrule.io.serialize import save
from chainrule.jobs.common import Log, check_outputs, require_packages, say
from chainrule.jobs.tabular import (
    ModelInfo,
    Resolved,
    Warn,
    load_for_job,
    load_model,
    predict_rows,
    resolve_defaults,
    warn_user,
)
from chainrule.nn.builders import mlp
from chainrule.nn.spec import build as build_spec
from chainrule.nn.spec import input_rank
from chainrule.parallel import check_batch, check_shared_outputs, current_world, fit_parallel
from chainrule.report.html import write_report
from chainrule.report.plots import plot_history
from chainrule.report.record import Evaluation, RunRecord
from chainrule.train import EarlyStopping, evaluate
from chainrule.train.checkpoint import Checkpoint, Resume, load_checkpoint
from chainrule.train.flow import GradientFlow
from chainrule.train.guard import DivergenceGuard
from chainrule.train.metrics import regression_metrics
from chainrule.train.schedules import make_schedule

__all__ = ["TrainConfig", "default_lr", "run_train"]


@dataclass
class TrainConfig:
    """What ``chainrule train`` is asked to do; field names are its options (``--data-dir`` is
    ``data_dir``), ``progress`` is the opposite of ``--quiet``. ``layers=None`` means
    ``D,256,128,K`` from the data; ``None``/``auto`` fields (loss, optimizer, lr, batch size, epochs,
    validation split, early stopping, task, scale) are decided from the data by
    :func:`chainrule.jobs.tabular.resolve_defaults`. ``early_stopping=0`` turns it off."""

    data: str = "default"
    data_dir: str | None = None
    download: bool = False
    target: str | None = None
    layers: list[int] | None = None
    arch: str | None = None
    activation: str = "relu"
    output_activation: str = "auto"
    loss: str | None = None
    optimizer: str | None = None
    lr: float | None = None
    momentum: float = 0.9
    batch_size: int | None = None
    epochs: int | None = None
    augment: str | None = None  # issue 8: training-set expansion ('shift')
    l2: float | None = None
    init: str = "auto"
    seed: int = 0
    dtype: str = "float32"
    validation_split: float | None = None
    early_stopping: int | None = None
    task: str = "auto"
    scale: str = "auto"
    test_fraction: float = 0.2
    schedule: str = "none"
    checkpoint: str | None = None
    checkpoint_every: int = 1
    resume: str | None = None
    init_from: str | None = None
    guard: bool = True
    verbose: bool = False
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
    drop_remainder: bool = False


def default_lr(optimizer: str | None) -> float:
    """The learning rate used when none is given: 0.001 for Adam, 0.1 otherwise."""
    return 0.001 if optimizer == "adam" else 0.1


def run_train(cfg: TrainConfig, *, log: Log = None, warn: Warn = None) -> RunRecord:
    """Run ``cfg``: everything that can fail early (backend, output folders, optional packages, the
    data, the layer sizes) fails before training. ``log`` receives status lines (the dataset),
    ``warn`` warnings about the data (task inference, empty classes; default: Python warnings).
    A run that diverges, stalls or fails writes no model, so an existing ``--save`` file is kept."""
    backend = get_backend(cfg.backend, cfg.device)
    # -- data parallel: one process unless under mpiexec (chainrule.parallel) -----------------
    world = current_world()
    if world.is_root:  # the writability probe writes a temp file: rank 0 alone writes
        check_outputs(
            {"--save": cfg.save, "--plot": cfg.plot, "--log": cfg.log, "--report": cfg.report},
            {"--data": cfg.data, "--data-dir": cfg.data_dir, "--init-from": cfg.init_from},
        )
    check_batch(cfg.batch_size, world.size, cfg.drop_remainder)
    ckpt_dir = cfg.checkpoint or cfg.resume  # rank 0 writes it, every rank reads it on resume
    ckpt = None if ckpt_dir is None else str(Path(ckpt_dir) / "checkpoint.npz")
    check_shared_outputs(world, [cfg.save, cfg.plot, cfg.log, cfg.report, ckpt])
    require_packages(
        [
            ("safetensors", "--save/--init-from", "cli", cfg.save or cfg.init_from),
            ("matplotlib", "--plot/--report", "plot", cfg.plot or cfg.report),
        ]
    )
    data = load_for_job(
        cfg.data, cfg.data_dir, target=cfg.target, download=cfg.download, seed=cfg.seed,
        test_fraction=cfg.test_fraction, task=cfg.task, progress=cfg.progress, min_classes=2,
    )  # fmt: skip
    say(log, data.summary())
    if cfg.augment is not None:  # issue 8: Nielsen's 1-pixel shifts (x5)
        data = _augmented(cfg, data)
        say(log, f"--augment {cfg.augment}: {data.n_train} training samples")
    for message in data.warnings:
        warn_user(warn, message)
    base = load_model(cfg.init_from) if cfg.init_from else None
    opts = resolve_defaults(cfg, data, None if base is None else base[1])
    minfo, (x_train, y_train), (x_test, y_test) = _preprocess(cfg, opts, data, base)
    net = _network(cfg, opts, data, base)
    net.to(backend, cfg.dtype)
    flow = None
    if cfg.flow_interval or cfg.report or cfg.log:
        flow = GradientFlow(**({"interval": cfg.flow_interval} if cfg.flow_interval else {}))
    with limit_threads(opts.threads):
        history = _fit(cfg, opts, net, (x_train, y_train), flow, minfo)
        ev = None
        if data.n_test and world.is_root:
            ev = evaluate(
                net, backend.asarray(x_test, dtype=cfg.dtype), backend.asarray(y_test), task=opts.task
            )
    config = asdict(cfg)
    config.update(
        layers=None if cfg.arch else _sizes(net), lr=opts.lr, backend=str(backend), runner=history.runner, dataset=data.name,
        task=opts.task, scale=opts.scale, optimizer=opts.optimizer, epochs=opts.epochs, loss=opts.loss,
        batch_size=opts.batch_size, l2=opts.l2, validation_split=opts.validation_split, early_stopping=opts.early_stopping,
    )  # fmt: skip
    if ev is not None and opts.task == "regress":
        config["test_metrics"] = _regression_test(net, minfo, data)
        ev = None
    record = RunRecord(
        config=config,
        history=history,
        evaluation=None if ev is None else Evaluation.from_result(ev),
        gradient_flow=None if flow is None else flow.to_dict(),
    )
    if world.is_root:  # rank 0 alone writes
        _write_outputs(cfg, record, net, data, minfo)
    return record


def _sizes(net: Any) -> list[int]:
    outs = [cfg["out_features"] for cfg in (layer.config() for layer in net.layers) if "out_features" in cfg]
    return [net.input_dim, *outs]


def _preprocess(cfg: TrainConfig, opts: Resolved, data: Any, base: Any) -> tuple[ModelInfo, Any, Any]:
    """Fit the scalers on the training rows (or take the ``--init-from`` model's) and apply them."""
    if base is not None:
        minfo = base[1]
        minfo = ModelInfo(opts.task, data.class_names, minfo.scaler, minfo.target_scaler)
    else:
        target = fit_scaler(data.y_train[:, None], "standard") if opts.task == "regress" else None
        minfo = ModelInfo(opts.task, data.class_names, fit_scaler(data.x_train, opts.scale), target)
    minfo.split = {"seed": cfg.seed, "test_fraction": cfg.test_fraction, "data": data.name}
    dtype = np.dtype(cfg.dtype)

    def part(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if minfo.target_scaler is not None:
            y = minfo.target_scaler.transform(y[:, None].astype(np.float64))[:, 0].astype(dtype)
        return minfo.features(x, dtype), y

    return minfo, part(data.x_train, data.y_train), part(data.x_test, data.y_test)


def _network(cfg: TrainConfig, opts: Resolved, data: Any, base: Any) -> Any:
    if base is not None:
        net = base[0]
        if net.input_dim is not None and net.input_dim != data.n_features:
            raise ConfigError(
                f"--init-from model expects {net.input_dim} features but the data has {data.n_features}"
            )
        if cfg.layers and cfg.layers != _sizes(net):
            raise ConfigError(f"--layers {cfg.layers} differs from the --init-from model's {_sizes(net)}")
        return net
    n_out = 1 if opts.task == "regress" else data.n_classes
    if cfg.arch is not None:
        return _arch_net(cfg, opts, data, n_out)
    return mlp(
        _layers(cfg, opts, data.n_features, n_out),
        cfg.activation,
        loss=opts.loss,
        output_activation=opts.output_activation,
        init=cfg.init,
        seed=cfg.seed,
        dtype=np.dtype(cfg.dtype),
    )


def _arch_net(cfg: TrainConfig, opts: Resolved, data: Any, n_out: int) -> Any:
    """The ``--arch`` network, fed the data's samples in the shape its first layer reads: rows,
    images ``(C, H, W)`` or sequences ``(T, D)`` (see :func:`sample_shape_for`)."""
    if cfg.layers is not None:
        raise ConfigError("give either --arch or --layers, not both")
    shape = sample_shape_for(input_rank(cfg.arch), data.sample_shape, getattr(data, "image_shape", None))
    net = build_spec(cfg.arch, shape, loss=opts.loss, seed=cfg.seed, dtype=np.dtype(cfg.dtype), init=cfg.init)
    out = net.output_shape()
    binary_single = opts.loss in ("bce", "squared") and out == (1,) and n_out == 2
    if out != (n_out,) and not binary_single:
        raise ConfigError(f"--arch gives outputs of shape {out} but the data has {n_out} classes")
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


def _augmented(cfg: TrainConfig, data: Any) -> Any:
    """The dataset with its training part expanded (``--augment``); images are square unless the
    data says otherwise."""
    shape = sample_shape_for(3, data.sample_shape, getattr(data, "image_shape", None))
    x, y = augment(cfg.augment, data.x_train, data.y_train, shape)
    return replace(data, x_train=x, y_train=y)


def _regression_test(net: Any, minfo: ModelInfo, data: Any) -> dict[str, float]:
    """MSE, MAE and R² on the test rows, in the target's own units."""
    pred, _ = predict_rows(net, minfo, data.x_test)
    return {**regression_metrics(pred, data.y_test), "n": int(data.n_test)}


def _layers(cfg: TrainConfig, opts: Resolved, n_features: int, n_classes: int) -> list[int]:
    layers = cfg.layers or [n_features, 256, 128, n_classes]
    if layers[0] != n_features:
        raise ConfigError(f"--layers starts with {layers[0]} inputs but the data has {n_features} features")
    binary_single = opts.loss in ("bce", "squared") and layers[-1] == 1 and n_classes == 2
    if layers[-1] != n_classes and not binary_single:
        what = "a regression target (1 output)" if opts.task == "regress" else f"{n_classes} classes"
        raise ConfigError(f"--layers ends with {layers[-1]} outputs but the data has {what}")
    return list(layers)


def _callbacks(cfg: TrainConfig, opts: Resolved, flow: GradientFlow | None) -> list[Any]:
    """Gradient flow, the divergence guard, the schedule and early stopping, in that order (a
    checkpoint saves them after all of them)."""
    cbs: list[Any] = [] if flow is None else [flow]
    if cfg.guard:
        cbs.append(DivergenceGuard(scaled=opts.scale != "none"))
    schedule = make_schedule(cfg.schedule, opts.epochs)
    if schedule is not None:
        cbs.append(schedule)
    if opts.early_stopping:
        monitor = "val_loss" if opts.validation_split > 0 else "loss"
        cbs.append(
            EarlyStopping(patience=int(opts.early_stopping), monitor=monitor, min_delta=opts.min_delta)
        )
    return cbs


#: the options a resumed run must share with the checkpointed one
_RESUME_KEYS = (
    "data", "target", "layers", "arch", "activation", "output_activation", "loss", "optimizer", "lr", "momentum",
    "batch_size", "epochs", "l2", "init", "seed", "dtype", "validation_split", "early_stopping", "task",
    "scale", "test_fraction", "schedule", "init_from", "guard", "flow_interval",
)  # fmt: skip


def _checkpointing(cfg: TrainConfig) -> tuple[Checkpoint | None, Resume | None]:
    meta = {k: getattr(cfg, k) for k in _RESUME_KEYS}
    resume = None
    if cfg.resume:
        resume = load_checkpoint(cfg.resume)
        for key in _RESUME_KEYS:
            saved = resume.meta.get(key)
            if saved != meta[key] and not (isinstance(saved, list) and list(saved) == list(meta[key] or [])):
                raise ConfigError(
                    f"--resume {cfg.resume}: the checkpoint was made with {key}={saved!r}, this run has "
                    f"{meta[key]!r}; give the same options as the interrupted run"
                )
    directory = cfg.checkpoint or cfg.resume
    return (None if directory is None else Checkpoint(directory, cfg.checkpoint_every, meta)), resume


def _fit(cfg: TrainConfig, opts: Resolved, net: Any, xy: Any, flow: GradientFlow | None, minfo: Any) -> Any:
    opt_kwargs: dict[str, Any] = (
        {"momentum": cfg.momentum} if opts.optimizer in ("momentum", "nesterov") else {}
    )
    checkpoint, resume = _checkpointing(cfg)
    return fit_parallel(  # plain fit in one process; under mpiexec, data parallel
        net,
        *xy,
        optimizer=opts.optimizer,
        lr=opts.lr,
        batch_size=opts.batch_size,
        epochs=opts.epochs,
        l2=opts.l2,
        seed=cfg.seed,
        validation_split=opts.validation_split,
        callbacks=_callbacks(cfg, opts, flow),
        progress=cfg.progress,
        verbose=cfg.verbose,
        fast=not cfg.plain,
        drop_remainder=cfg.drop_remainder,
        task=opts.task,
        checkpoint=checkpoint,
        resume=resume,
        **opt_kwargs,
    )


def _write_outputs(cfg: TrainConfig, record: RunRecord, net: Any, data: Any, minfo: ModelInfo) -> None:
    if cfg.save:
        info = {
            **minfo.to_info(),
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
