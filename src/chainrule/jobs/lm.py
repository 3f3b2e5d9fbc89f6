"""``chainrule lm``: a character-level language model trained by stateful truncated BPTT.

The network is ``onehot:V CELL:H dense:V`` with softmax cross-entropy at every step. The text's last
``val_fraction`` is held out; the rest is cut into ``batch_size`` contiguous streams walked
``seq_len`` characters at a time with the hidden state carried between windows. Each step is the
three-stage step with global gradient-norm clipping as the hook (:func:`~chainrule.train.sequence.tbptt_step`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chainrule.accel.recurrent import install
from chainrule.backend import get_backend
from chainrule.backend.threads import limit_threads
from chainrule.errors import ConfigError
from chainrule.io.serialize import save
from chainrule.io.text import Vocabulary, check_windows, read_text, split_text, stream_windows
from chainrule.jobs.common import Log, check_writable, require_packages, say
from chainrule.nn.spec import build
from chainrule.optim import get_optimizer
from chainrule.train.clip import ClipGradNorm
from chainrule.train.loop import TrainingDiverged
from chainrule.train.sequence import generate, reset_state, tbptt_step, window_nats

__all__ = ["CELLS", "LMConfig", "LMResult", "build_lm", "run_lm"]

CELLS = ("lstm", "gru", "rnn")


@dataclass
class LMConfig:
    """What ``chainrule lm`` is asked to do (field names are its options). ``text=None``: the
    embedded default text; ``prime=None``: the validation text's first character."""

    text: str | None = None
    cell: str = "lstm"
    hidden: int = 256
    seq_len: int = 64
    batch_size: int = 32
    steps: int = 200
    optimizer: str = "adam"
    lr: float = 0.002
    clip: float | None = 5.0
    val_fraction: float = 0.1
    eval_every: int = 100
    sample_length: int = 200
    temperature: float = 0.8
    prime: str | None = None
    seed: int = 0
    dtype: str = "float32"
    backend: str | None = None
    device: str | None = None
    threads: int | None = None
    plain: bool = False
    save: str | None = None


@dataclass
class LMResult:
    """The run: validation nats per character at the end and along the way, per-step seconds."""

    text: str
    vocab_size: int
    train_chars: int
    val_chars: int
    steps: int
    val_nats_per_char: float
    step_seconds: list[float]
    history: list[dict[str, float]] = field(default_factory=list)
    sample: str = ""
    kernels: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "vocab_size": self.vocab_size,
            "train_chars": self.train_chars,
            "val_chars": self.val_chars,
            "steps": self.steps,
            "val_nats_per_char": self.val_nats_per_char,
            "mean_step_seconds": float(np.mean(self.step_seconds)) if self.step_seconds else None,
            "step_seconds": self.step_seconds,
            "history": self.history,
            "sample": self.sample,
            "kernels": self.kernels,
        }


def _check(cfg: LMConfig) -> None:
    if cfg.cell not in CELLS:
        raise ConfigError(f"--cell must be one of {', '.join(CELLS)}, got {cfg.cell!r}")
    for name in ("hidden", "seq_len", "batch_size", "steps", "eval_every"):
        if int(getattr(cfg, name)) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be positive, got {getattr(cfg, name)}")
    if cfg.clip is not None and not cfg.clip > 0:
        raise ConfigError(f"--clip must be positive, got {cfg.clip}")
    if not cfg.temperature > 0:
        raise ConfigError(f"--temperature must be positive, got {cfg.temperature}")
    if cfg.sample_length < 0:
        raise ConfigError(f"--sample-length must be 0 or more, got {cfg.sample_length}")


def build_lm(
    cell: str, vocab: int, hidden: int, seq_len: int, *, seed: int = 0, dtype: Any = np.float32
) -> Any:
    """``onehot:V CELL:H dense:V`` with softmax cross-entropy over every step; it reads windows of
    any length (validation's last window, a prime, one character at a time when sampling)."""
    net = build(f"onehot:{vocab} {cell}:{hidden} dense:{vocab}", (seq_len,), seed=seed, dtype=dtype)
    net.input_shape = None  # any sequence length
    return net


def _windows_forever(ids: np.ndarray, batch: int, seq_len: int, net: Any) -> Iterator[tuple[Any, Any]]:
    """Training windows, pass after pass (the state is reset at the start of each pass)."""
    while True:
        reset_state(net)
        for x, y in stream_windows(ids, batch, seq_len):
            if x.shape[1] == seq_len:
                yield x, y


def run_lm(cfg: LMConfig, *, log: Log = None) -> LMResult:
    """Train, report validation nats/char every ``eval_every`` steps through ``log``, sample, save."""
    _check(cfg)
    check_writable(cfg.save)
    require_packages([("safetensors", "--save", "cli", cfg.save)])
    backend = get_backend(cfg.backend, cfg.device)
    text, name = read_text(cfg.text)
    vocab = Vocabulary.of(text)
    train_ids, val_ids = split_text(vocab.encode(text), cfg.val_fraction)
    check_windows(len(train_ids), cfg.batch_size, cfg.seq_len)
    say(
        log,
        f"{name}: {len(text)} characters, {len(vocab)} distinct; {len(train_ids)} train, {len(val_ids)} validation",
    )
    net = build_lm(cfg.cell, len(vocab), cfg.hidden, cfg.seq_len, seed=cfg.seed, dtype=np.dtype(cfg.dtype))
    net.to(backend, cfg.dtype)
    kernels = [] if cfg.plain else install(net)
    opt = get_optimizer(cfg.optimizer, cfg.lr)
    hooks = [ClipGradNorm(cfg.clip)] if cfg.clip else []
    val_batch = max(1, min(cfg.batch_size, (len(val_ids) - 1) // cfg.seq_len))

    def validation() -> float:
        return window_nats(net, stream_windows(val_ids, val_batch, cfg.seq_len))

    history: list[dict[str, float]] = []
    seconds: list[float] = []
    windows = _windows_forever(train_ids, cfg.batch_size, cfg.seq_len, net)
    with limit_threads(cfg.threads):
        net.train()
        running = 0.0
        for step in range(1, cfg.steps + 1):
            x, y = next(windows)
            xb, yb = backend.asarray(x, dtype=cfg.dtype), backend.asarray(y)
            backend.synchronize()
            t0 = time.perf_counter()
            cost = tbptt_step(net, xb, yb, opt, hooks)
            backend.synchronize()
            seconds.append(time.perf_counter() - t0)
            running += float(cost)
            if not np.isfinite(running):
                raise TrainingDiverged(f"the training loss became {running} at step {step}; lower --lr")
            if step % cfg.eval_every == 0 or step == cfg.steps:
                val = validation()
                net.train()
                n = step - (history[-1]["step"] if history else 0)
                history.append({"step": step, "train_nats_per_char": running / n, "val_nats_per_char": val})
                say(
                    log,
                    f"step {step}/{cfg.steps}  train {running / n:.4f}  val {val:.4f} nats/char  "
                    f"({np.mean(seconds[-n:]):.4f} s/step)",
                )
                running = 0.0
        sample = _sample(net, vocab, cfg, val_ids)
    net.eval()
    result = LMResult(
        text=name,
        vocab_size=len(vocab),
        train_chars=len(train_ids),
        val_chars=len(val_ids),
        steps=cfg.steps,
        val_nats_per_char=history[-1]["val_nats_per_char"],
        step_seconds=seconds,
        history=history,
        sample=sample,
        kernels=kernels,
    )
    if cfg.save:
        info = {
            "kind": "chainrule-lm",
            "vocab": vocab.to_info(),
            "cell": cfg.cell,
            "hidden": cfg.hidden,
            "text": name,
            "steps": cfg.steps,
            "val_nats_per_char": result.val_nats_per_char,
        }
        save(net, cfg.save, info=info)
    return result


def _sample(net: Any, vocab: Vocabulary, cfg: LMConfig, val_ids: np.ndarray) -> str:
    if cfg.sample_length == 0:
        return ""
    prime = cfg.prime if cfg.prime is not None else vocab.decode(val_ids[:1])
    ids = generate(
        net,
        vocab.encode(prime, "--prime"),
        cfg.sample_length,
        cfg.temperature,
        np.random.default_rng(cfg.seed),
    )
    return prime + vocab.decode(ids)
