"""``chainrule rbm``: train an RBM by CD-k or PCD-k, score it every epoch (pseudo-log-likelihood as
scikit-learn's ``score_samples``, reconstruction error), optionally estimate log Z by AIS (and
exactly for ≤ 20 hidden units), draw its filters and Gibbs samples, save it."""

from __future__ import annotations

import io
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from chainrule._io import atomic_write_bytes, atomic_write_text, json_default
from chainrule.errors import ConfigError, DataNotFoundError, ModelFileError
from chainrule.jobs.common import Log, check_writable, load_dataset, require_packages, say
from chainrule.report.unsupervised import image_grid_png, write_figures
from chainrule.unsupervised.ais import ais_log_partition, check_log_partition_finite
from chainrule.unsupervised.rbm import (
    MAX_ENUMERATE_HIDDEN,
    RBM,
    CDSettings,
    CDTrainer,
    check_binary,
    exact_log_partition,
)

__all__ = ["RBMConfig", "RBMOutput", "load_rbm", "run_rbm", "save_rbm"]


@dataclass
class RBMConfig:
    data: str = "mnist"
    data_dir: str | None = None
    download: bool = False
    hidden: int = 500
    visible: str = "bernoulli"
    binarize: float | None = None
    cd: int = 1
    persistent: bool = False
    lr: float = 0.05
    batch_size: int = 100
    momentum: float = 0.0
    weight_decay: float = 0.0
    epochs: int = 10
    shuffle: bool = True
    train_images: int | None = None
    score_images: int = 2000
    ais: bool = False
    ais_runs: int = 100
    ais_betas: int = 10000
    seed: int = 0
    load: str | None = None
    save: str | None = None
    out: str | None = None
    progress: bool = True


@dataclass
class RBMOutput:
    summary: dict[str, Any]
    rbm: RBM
    written: list[Path] = field(default_factory=list)


def save_rbm(rbm: RBM, path: str | Path) -> None:
    """``W, b, c`` and the config (JSON) in one ``.npz``, written atomically."""
    buf = io.BytesIO()
    np.savez(buf, W=rbm.W, b=rbm.b, c=rbm.c, config=np.array(json.dumps(rbm.config())))
    atomic_write_bytes(Path(path), buf.getvalue())


def load_rbm(path: str | Path) -> RBM:
    """An RBM written by :func:`save_rbm`; a malformed file is a :class:`ModelFileError`."""
    p = Path(path)
    if not p.is_file():
        raise DataNotFoundError(f"{path}: no such RBM file")
    try:
        with np.load(p, allow_pickle=False) as z:
            cfg = json.loads(str(z["config"]))
            return RBM(int(cfg["n_visible"]), int(cfg["n_hidden"]), visible=cfg["visible"],
                       hidden=cfg["hidden"], W=z["W"], b=z["b"], c=z["c"])
    except ConfigError:
        raise
    except Exception as exc:  # any malformation of the file: zip, key, JSON, shape
        raise ModelFileError(f"{path}: not an RBM file written by chainrule rbm --save ({exc})") from None


def _data(cfg: RBMConfig, log: Log) -> tuple[np.ndarray, np.ndarray]:
    data = load_dataset(cfg.data, cfg.data_dir, download=cfg.download, progress=cfg.progress)
    say(log, data.summary())
    x, xt = data.x_train[: cfg.train_images], data.x_test[: cfg.score_images]
    if cfg.binarize is not None:
        x, xt = (x > cfg.binarize), (xt > cfg.binarize)
    x, xt = np.ascontiguousarray(x, np.float32), np.ascontiguousarray(xt, np.float32)
    if cfg.visible == "bernoulli":
        check_binary(x, f"{data.name} training images")
        check_binary(xt, f"{data.name} test images")
    return x, xt


def _scores(rbm: RBM, xt: np.ndarray, seed: int) -> dict[str, float]:
    """PLL with scikit-learn's flips for ``random_state=seed`` (float64), reconstruction error."""
    r64 = rbm.astype(np.float64)
    out = {"reconstruction_error": r64.reconstruction_error(xt)}
    if rbm.visible == "bernoulli":
        flip = np.random.RandomState(seed).randint(0, xt.shape[1], xt.shape[0])
        out["pseudo_log_likelihood"] = float(r64.pseudo_log_likelihood(xt, flip).mean())
    return out


def _log_likelihood(cfg: RBMConfig, rbm: RBM, x: np.ndarray, xt: np.ndarray, log: Log) -> dict[str, Any]:
    res: dict[str, Any] = {}
    if rbm.hidden == "bernoulli" and rbm.n_hidden <= MAX_ENUMERATE_HIDDEN:
        lz = exact_log_partition(rbm)
        res["exact_log_z"], res["exact_log_likelihood"] = lz, rbm.log_likelihood(xt, lz)
    if cfg.ais:
        t0 = time.perf_counter()
        a = ais_log_partition(rbm, runs=cfg.ais_runs, betas=cfg.ais_betas, data=x, seed=cfg.seed)
        ll = rbm.log_likelihood(xt, a.log_z)
        res["ais"] = {**a.to_dict(), "seconds": time.perf_counter() - t0}
        res["ais_log_likelihood"] = {
            "mean": ll, "std_err": a.std_err,
            "low": ll - (a.log_z_high - a.log_z),
            "high": ll + (a.log_z - a.log_z_low) if math.isfinite(a.log_z_low) else math.inf,
        }
        say(log, f"AIS: log Z = {a.log_z:.2f} ± {a.std_err:.3f}; test log-likelihood {ll:.2f} nats per image")
    return res


def _check(cfg: RBMConfig) -> None:
    CDSettings(k=cfg.cd, lr=cfg.lr, batch_size=cfg.batch_size, momentum=cfg.momentum,
               weight_decay=cfg.weight_decay).check()
    if cfg.epochs < 0 or cfg.hidden < 1 or cfg.score_images < 1:
        raise ConfigError("--epochs must be >= 0, --hidden and --score-images >= 1")
    if cfg.out is not None and Path(cfg.out).exists() and not Path(cfg.out).is_dir():
        raise ConfigError(f"--out {cfg.out}: exists and is not a directory")
    check_writable(cfg.save)
    if cfg.save and cfg.load and Path(cfg.save).resolve() == Path(cfg.load).resolve():
        raise ConfigError("--save would overwrite the --load file; choose another path")
    require_packages([("matplotlib", "plots", "plot", cfg.out is not None)])


def run_rbm(cfg: RBMConfig, *, log: Log = None) -> RBMOutput:
    _check(cfg)
    rbm = load_rbm(cfg.load) if cfg.load else None
    if rbm is not None and cfg.ais:
        check_log_partition_finite(rbm)  # before any work
    x, xt = _data(cfg, log)
    if rbm is None:
        rbm = RBM(x.shape[1], cfg.hidden, visible=cfg.visible, seed=cfg.seed)
    elif rbm.n_visible != x.shape[1]:
        raise ConfigError(f"the loaded RBM has {rbm.n_visible} visible units but the data {x.shape[1]} features")
    settings = CDSettings(k=cfg.cd, persistent=cfg.persistent, lr=cfg.lr, batch_size=cfg.batch_size,
                          momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    trainer = CDTrainer(rbm, settings, seed=cfg.seed)
    epochs: list[dict[str, float]] = []
    for epoch in range(1, cfg.epochs + 1):
        t0 = time.perf_counter()
        trainer.run_epoch(x, shuffle=cfg.shuffle)
        row = {"epoch": epoch, "seconds": time.perf_counter() - t0, **_scores(rbm, xt, cfg.seed)}
        epochs.append(row)
        say(log, "epoch {epoch}: {seconds:.2f}s  ".format(**row)
            + "  ".join(f"{k} {v:.3f}" for k, v in row.items() if k not in ("epoch", "seconds")))
    if not (np.isfinite(rbm.W).all() and np.isfinite(rbm.b).all() and np.isfinite(rbm.c).all()):
        raise ConfigError(f"training diverged (non-finite weights); lower the learning rate (now {cfg.lr})")
    final = _scores(rbm, xt, cfg.seed)
    summary: dict[str, Any] = {
        "dataset": cfg.data, "rbm": rbm.config(), "method": f"{'PCD' if cfg.persistent else 'CD'}-{cfg.cd}",
        "lr": cfg.lr, "batch_size": cfg.batch_size, "epochs": cfg.epochs, "train_images": int(x.shape[0]),
        "score_images": int(xt.shape[0]), "binarize": cfg.binarize, "dtype": str(rbm.W.dtype),
        "epoch_seconds": [e["seconds"] for e in epochs],
        "pseudo_log_likelihood": [e["pseudo_log_likelihood"] for e in epochs if "pseudo_log_likelihood" in e],
        "reconstruction_error": [e["reconstruction_error"] for e in epochs],
        "final": final,
        **_log_likelihood(cfg, rbm, x, xt, log),
    }
    written = _outputs(cfg, rbm, xt, summary)
    return RBMOutput(summary, rbm, written)


def _outputs(cfg: RBMConfig, rbm: RBM, xt: np.ndarray, summary: dict[str, Any]) -> list[Path]:
    written: list[Path] = []
    if cfg.out is not None:
        out = Path(cfg.out)
        out.mkdir(parents=True, exist_ok=True)
        side = round(math.sqrt(rbm.n_visible))
        figures = []
        if side * side == rbm.n_visible:
            n = min(100, rbm.n_hidden)
            cap = f"first {n} RBM filters (columns of W)"
            figures.append(("rbm_filters.png", image_grid_png(rbm.W.T[:n], cap), cap))
            rng = np.random.default_rng(cfg.seed)
            v, chains = xt[:10], [xt[:10]]
            for _ in range(9):
                mean, v = rbm.gibbs(v, 100, rng)
                chains.append(mean)
            cap = "Gibbs chains (columns): test digits (top row), then E[v|h] every 100 steps"
            figures.append(("rbm_samples.png", image_grid_png(np.concatenate(chains), cap), cap))
        table = [(k, str(summary[k])) for k in ("rbm", "method", "lr", "batch_size", "epochs")]
        table += [(k, f"{v:.4g}") for k, v in summary["final"].items()]
        if "ais_log_likelihood" in summary:
            a = summary["ais_log_likelihood"]
            table.append(("AIS test log-likelihood", f"{a['mean']:.2f} ± {a['std_err']:.3f}"))
        written += write_figures(out, f"chainrule rbm {rbm}", table, figures)
        rec = out / "rbm.json"
        atomic_write_text(rec, json.dumps(summary, default=json_default, indent=1))
        written.append(rec)
    if cfg.save:
        save_rbm(rbm, cfg.save)
        written.append(Path(cfg.save))
    return written
