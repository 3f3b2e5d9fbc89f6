"""``chainrule autoencoder``: a deep autoencoder, optionally pre-trained layer by layer (RBMs or
autoencoders), fine-tuned by backprop, scored against PCA with the same code size on the same data
(Hinton & Salakhutdinov 2006)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from chainrule._io import atomic_write_text, json_default
from chainrule.errors import ConfigError
from chainrule.io.serialize import save as save_model
from chainrule.jobs.common import Log, check_writable, load_dataset, require_packages, say
from chainrule.nn.autoencoder import Autoencoder, check_encoder_sizes, deep_autoencoder
from chainrule.report.unsupervised import codes_png, reconstructions_png, write_figures
from chainrule.train import fit
from chainrule.train.callbacks import Callback
from chainrule.unsupervised import pretrain_autoencoders, pretrain_rbms, unroll_autoencoder
from chainrule.unsupervised.pca import PCA, squared_error_per_image

__all__ = ["AutoencoderConfig", "AutoencoderOutput", "run_autoencoder"]


@dataclass
class AutoencoderConfig:
    data: str = "mnist"
    data_dir: str | None = None
    download: bool = False
    layers: list[int] = field(default_factory=lambda: [784, 1000, 500, 250, 30])
    pretrain: str = "rbm"  # rbm | autoencoder | none
    pretrain_epochs: int = 10
    pretrain_lr: float | None = None  # default: 0.1 (RBM), 1e-3 (autoencoder, Adam)
    epochs: int = 10  # fine-tuning epochs
    optimizer: str = "adam"
    lr: float = 1e-3
    batch_size: int = 100
    pretrain_batch_size: int = 100
    loss: str = "bce"
    tied: bool = False
    noise: float = 0.0
    sparsity: tuple[float, float] | None = None
    code_activation: str = "identity"
    train_images: int | None = None  # first N training images only (CI, quick runs)
    eval_every: int = 1  # test error every N fine-tuning epochs (0: only at the end)
    seed: int = 0
    out: str | None = None  # PNGs and autoencoder.json
    save: str | None = None
    progress: bool = True


@dataclass
class AutoencoderOutput:
    summary: dict[str, Any]
    net: Autoencoder
    written: list[Path] = field(default_factory=list)


class _TestError(Callback):
    """Test squared error per image after every ``every``-th epoch, into the epoch's logs."""

    def __init__(self, net: Autoencoder, x: np.ndarray, every: int, log: Log) -> None:
        self.net, self.x, self.every, self.log = net, x, every, log

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        if self.every and epoch % self.every == 0:
            logs["test_squared_error"] = squared_error_per_image(self.x, self.net.reconstruct(self.x))
            say(self.log, f"fine-tune epoch {epoch}: loss {logs['loss']:.4f}  test squared error "
                          f"{logs['test_squared_error']:.3f}  ({logs['seconds']:.1f}s)")


def _check(cfg: AutoencoderConfig) -> list[int]:
    sizes = check_encoder_sizes(cfg.layers)
    if cfg.pretrain not in ("rbm", "autoencoder", "none"):
        raise ConfigError(f"--pretrain must be rbm, autoencoder or none, got {cfg.pretrain!r}")
    if cfg.pretrain == "rbm" and (cfg.noise or cfg.sparsity):
        raise ConfigError("--noise and --sparsity apply to an autoencoder trained by backprop, not to RBM pre-training")
    if cfg.epochs < 0 or cfg.pretrain_epochs < 1:
        raise ConfigError("--epochs must be >= 0 and --pretrain-epochs >= 1")
    if cfg.out is not None and Path(cfg.out).exists() and not Path(cfg.out).is_dir():
        raise ConfigError(f"--out {cfg.out}: exists and is not a directory")
    check_writable(cfg.save)
    if cfg.save and (cfg.noise or cfg.sparsity):
        raise ConfigError("--save stores plain Dense/sigmoid autoencoders; drop --noise/--sparsity to save")
    require_packages([("safetensors", "--save", "cli", cfg.save)])
    require_packages([("matplotlib", "plots", "plot", cfg.out is not None)])
    return sizes


def _build(cfg: AutoencoderConfig, sizes: list[int], x: np.ndarray, log: Log) -> tuple[Autoencoder, float]:
    t0 = time.perf_counter()

    def progress(layer: int, epoch: int, seconds: float, err: float) -> None:
        say(log, f"pre-train layer {layer} epoch {epoch}: reconstruction error {err:.3f} ({seconds:.1f}s)")

    linear = cfg.code_activation == "identity"
    if cfg.pretrain == "rbm":
        stack = pretrain_rbms(x, sizes, epochs=cfg.pretrain_epochs, lr=cfg.pretrain_lr or 0.1,
                              linear_top=linear, batch_size=cfg.pretrain_batch_size, seed=cfg.seed, progress=progress)
    elif cfg.pretrain == "autoencoder":
        stack = pretrain_autoencoders(x, sizes, epochs=cfg.pretrain_epochs, lr=cfg.pretrain_lr or 1e-3,
                                      noise=cfg.noise, linear_top=linear, batch_size=cfg.pretrain_batch_size,
                                      seed=cfg.seed, progress=progress)
    else:
        return deep_autoencoder(sizes, tied=cfg.tied, loss=cfg.loss, code_activation=cfg.code_activation,
                                noise=cfg.noise, sparsity=cfg.sparsity, seed=cfg.seed), 0.0
    net = unroll_autoencoder(stack, tied=cfg.tied, loss=cfg.loss)
    return net, time.perf_counter() - t0


def _pictures(cfg: AutoencoderConfig, net: Autoencoder, pca: PCA, x: np.ndarray, y: np.ndarray,
              summary: dict[str, Any]) -> list[Path]:
    out = Path(str(cfg.out))
    out.mkdir(parents=True, exist_ok=True)
    idx = np.array([int(np.flatnonzero(y == d)[0]) for d in range(10) if np.any(y == d)])
    k, arch = cfg.layers[-1], "-".join(map(str, cfg.layers))
    rows = [("test", x[idx]), (f"AE {k}-D", net.reconstruct(x[idx])), (f"PCA {k}-D", pca.reconstruct(x[idx]))]
    figures = [("reconstructions.png", reconstructions_png(rows),
                f"test digits, their {arch} autoencoder reconstructions and PCA({k}) reconstructions")]
    if k == 2:
        figures.append(("codes.png", codes_png(net.encode(x), y, f"2-D codes of {x.shape[0]} test digits ({arch})"),
                        "2-D codes of the test digits, coloured by digit"))
    keys = ("layers", "pretrain", "fine_tune_epochs", "test_squared_error_per_image", "pca_squared_error_per_image",
            "pretrain_seconds", "fine_tune_seconds")
    table = [(key, f"{summary[key]:.4g}" if isinstance(summary[key], float) else str(summary[key])) for key in keys]
    return write_figures(out, f"chainrule autoencoder {arch}", table, figures)


def _history(hist: Any) -> list[dict[str, Any]]:
    """The per-epoch records of fine-tuning, without ``fit``'s classification accuracy (the arg-max of
    a reconstruction against the arg-max of its input means nothing for an autoencoder)."""
    return [{k: v for k, v in e.items() if k != "accuracy"} for e in hist.epochs] if hist else []


def run_autoencoder(cfg: AutoencoderConfig, *, log: Log = None) -> AutoencoderOutput:
    """Pre-train (unless ``none``), unroll, fine-tune ``epochs`` epochs by backprop, and report the
    test squared error per image beside PCA's with the same code size, fitted on the same images."""
    sizes = _check(cfg)
    data = load_dataset(cfg.data, cfg.data_dir, download=cfg.download, progress=cfg.progress)
    say(log, data.summary())
    x = np.ascontiguousarray(data.x_train[: cfg.train_images], dtype=np.float32)
    xt = np.ascontiguousarray(data.x_test, dtype=np.float32)
    if x.shape[1] != sizes[0]:
        raise ConfigError(f"--layers starts with {sizes[0]} inputs but the data has {x.shape[1]} features")
    if float(x.min()) < 0 or float(x.max()) > 1:
        raise ConfigError("the autoencoder reconstructs values in [0, 1] (sigmoid outputs); scale the data")
    t_start = time.perf_counter()
    net, pre_s = _build(cfg, sizes, x, log)
    error_before = squared_error_per_image(xt, net.reconstruct(xt))
    say(log, f"before fine-tuning: test squared error {error_before:.3f} (pre-training {pre_s:.1f}s)")
    hist = None
    if cfg.epochs:
        hist = fit(net, x, x, optimizer=cfg.optimizer, lr=cfg.lr, batch_size=cfg.batch_size, epochs=cfg.epochs,
                   seed=cfg.seed, progress=False, callbacks=[_TestError(net, xt, cfg.eval_every, log)])
    err = squared_error_per_image(xt, net.reconstruct(xt))
    pca = PCA.fit(x, sizes[-1])
    pca_err = squared_error_per_image(xt, pca.reconstruct(xt))
    summary: dict[str, Any] = {
        "dataset": data.name, "layers": sizes, "pretrain": cfg.pretrain, "tied": cfg.tied, "loss": cfg.loss,
        "noise": cfg.noise, "sparsity": cfg.sparsity, "train_images": int(x.shape[0]),
        "test_images": int(xt.shape[0]), "pretrain_epochs": cfg.pretrain_epochs if cfg.pretrain != "none" else 0,
        "fine_tune_epochs": cfg.epochs, "optimizer": cfg.optimizer, "lr": cfg.lr, "batch_size": cfg.batch_size, "pretrain_batch_size": cfg.pretrain_batch_size,
        "test_squared_error_per_image": err, "pca_squared_error_per_image": pca_err,
        "test_squared_error_before_fine_tuning": error_before,
        "pretrain_seconds": pre_s, "fine_tune_seconds": float(sum(hist.epoch_seconds)) if hist else 0.0,
        "wall_seconds": time.perf_counter() - t_start, "history": _history(hist),
    }
    written: list[Path] = []
    if cfg.out is not None:
        written = _pictures(cfg, net, pca, xt, data.y_test, summary)
        rec = Path(cfg.out) / "autoencoder.json"
        atomic_write_text(rec, json.dumps(summary, default=json_default, indent=1))
        written.append(rec)
    if cfg.save:
        save_model(net, cfg.save, info={"pretrain": cfg.pretrain})
        written.append(Path(cfg.save))
    return AutoencoderOutput(summary, net, written)
