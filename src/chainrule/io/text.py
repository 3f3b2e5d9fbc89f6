"""Text for character-level language models: reading, the vocabulary, and the batches of truncated
BPTT.

* :func:`read_text` reads a UTF-8 file (or the embedded default, the opening of *Romeo and Juliet*;
  see ``chainrule/_data/README.md``) and refuses empty, one-character and non-UTF-8 text.
* :class:`Vocabulary` is the sorted set of the text's characters; ids are positions in it. A saved
  model keeps it in its ``info`` as one string, and :meth:`Vocabulary.from_info` checks it on load.
* :func:`split_text` holds out the last fraction for validation; :func:`stream_windows` cuts the
  ids into ``B`` contiguous streams and walks them ``T`` characters at a time, so the hidden state
  at the end of one window is the right start for the next (stateful truncated BPTT)::

      streams: ids[: B·L] as (B, L)          window k: x = streams[:, kT:(k+1)T], y = x shifted by one
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

from chainrule.errors import ConfigError, DataError, DataNotFoundError, ModelFileError

__all__ = [
    "DEFAULT_TEXT",
    "MAX_TEXT_BYTES",
    "Vocabulary",
    "read_text",
    "split_text",
    "stream_windows",
]

DEFAULT_TEXT = ("chainrule._data", "romeo_and_juliet.txt")
MAX_TEXT_BYTES = 256 * 1024 * 1024
MAX_VOCAB = 65536


def _decode(raw: bytes, name: str) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{name}: not UTF-8 text (byte {exc.start} is {raw[exc.start]:#04x})") from None
    if len(text) < 2:
        raise DataError(f"{name}: a language model needs at least 2 characters of text, got {len(text)}")
    return text


def read_text(path: str | os.PathLike[str] | None = None) -> tuple[str, str]:
    """``(text, name)`` from a UTF-8 file, or the embedded default when ``path`` is None."""
    if path is None:
        package, filename = DEFAULT_TEXT
        raw = resources.files(package).joinpath(filename).read_bytes()
        return _decode(raw, f"{package}/{filename}"), "romeo_and_juliet (embedded)"
    name = os.fspath(path)
    if os.path.isdir(name):
        raise DataError(f"{name}: is a directory, not a text file")
    try:
        size = os.path.getsize(name)
    except FileNotFoundError:
        raise DataNotFoundError(f"{name}: text file not found") from None
    if size > MAX_TEXT_BYTES:
        raise DataError(f"{name}: {size} bytes is over the limit of {MAX_TEXT_BYTES} for a text")
    with open(name, "rb") as fh:
        raw = fh.read()
    return _decode(raw, name), os.path.basename(name)


@dataclass(frozen=True)
class Vocabulary:
    """The characters a model knows, sorted; a character's id is its position."""

    chars: str

    @classmethod
    def of(cls, text: str) -> Vocabulary:
        return cls("".join(sorted(set(text))))

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str, what: str = "text") -> np.ndarray:
        """Ids of ``text`` (int64); a character outside the vocabulary is a :class:`DataError`."""
        index = {c: i for i, c in enumerate(self.chars)}
        unknown = sorted(set(text) - index.keys())
        if unknown:
            shown = ", ".join(repr(c) for c in unknown[:10])
            raise DataError(f"{what} has characters the model does not know: {shown}")
        return np.fromiter((index[c] for c in text), dtype=np.int64, count=len(text))

    def decode(self, ids: Any) -> str:
        return "".join(self.chars[int(i)] for i in ids)

    def to_info(self) -> str:
        return self.chars

    @classmethod
    def from_info(cls, info: dict[str, Any], size: int, name: str) -> Vocabulary:
        """The vocabulary saved in a model's ``info``, checked: a string of ``size`` distinct
        characters in sorted order (``size`` is the model's output width)."""
        vocab = info.get("vocab") if isinstance(info, dict) else None
        if vocab is None:
            raise ModelFileError(f"{name}: not a language model (no vocabulary in its info)")
        if not isinstance(vocab, str) or not vocab or len(vocab) > MAX_VOCAB:
            raise ModelFileError(f"{name}: malformed vocabulary (expected a string of characters)")
        if len(set(vocab)) != len(vocab) or list(vocab) != sorted(vocab):
            raise ModelFileError(f"{name}: malformed vocabulary (characters repeated or out of order)")
        if len(vocab) != size:
            raise ModelFileError(
                f"{name}: the vocabulary has {len(vocab)} characters but the model has {size} outputs"
            )
        return cls(vocab)


def split_text(ids: np.ndarray, val_fraction: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """``(train, validation)``: the last ``val_fraction`` of the ids is held out."""
    if not 0 < val_fraction < 1:
        raise ConfigError(f"the validation fraction must be in (0, 1), got {val_fraction}")
    n_val = max(2, round(len(ids) * val_fraction))
    if len(ids) - n_val < 2:
        raise DataError(f"the text ({len(ids)} characters) is too short to hold out a validation part")
    return ids[:-n_val], ids[-n_val:]


def check_windows(n: int, batch: int, seq_len: int, what: str = "training text") -> int:
    """Characters per stream, ``L = (n − 1) // batch``; a window must fit into it."""
    if seq_len >= n:
        raise ConfigError(f"--seq-len {seq_len} is larger than the {what} ({n} characters)")
    per_stream = (n - 1) // batch
    if per_stream < seq_len:
        raise ConfigError(
            f"--seq-len {seq_len} with --batch-size {batch} needs at least {batch * seq_len + 1} "
            f"characters of {what}, it has {n}: lower --seq-len or --batch-size"
        )
    return per_stream


def stream_windows(ids: np.ndarray, batch: int, seq_len: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(x, y)`` windows ``(B, T)`` over ``B`` contiguous streams, in order; the last window of a
    pass may be shorter. ``y`` is ``x`` shifted by one character."""
    per_stream = (len(ids) - 1) // batch
    if per_stream < 1:
        raise ConfigError(f"{len(ids)} characters cannot make {batch} streams")
    x = ids[: batch * per_stream].reshape(batch, per_stream)
    y = ids[1 : batch * per_stream + 1].reshape(batch, per_stream)
    for start in range(0, per_stream, seq_len):
        yield x[:, start : start + seq_len], y[:, start : start + seq_len]
