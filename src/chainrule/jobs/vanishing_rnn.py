"""``chainrule vanishing --rnn``: the through-time study (:mod:`chainrule.studies.vanishing_rnn`), its
table, ``vanishing_rnn.png`` and ``vanishing_rnn.json`` in an output folder."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from chainrule._io import atomic_write_bytes, atomic_write_text, json_default
from chainrule.errors import ConfigError
from chainrule.jobs.common import require_packages
from chainrule.report.plots_rnn import plot_rnn_vanishing
from chainrule.studies.vanishing_rnn import RNNVanishingResult, run_rnn_study

__all__ = ["RNNVanishingOutput", "run_vanishing_rnn"]


@dataclass
class RNNVanishingOutput:
    result: RNNVanishingResult
    written: list[Path] = field(default_factory=list)


def run_vanishing_rnn(
    out: str = ".", *, seed: int = 0, steps: int | None = None, plots: bool = True
) -> RNNVanishingOutput:
    """Train and measure (``steps`` Adam steps per cell, default 800), then write the PNG and JSON."""
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--out {out}: exists and is not a directory")
    if plots:
        require_packages([("matplotlib", "plots", "plot", True)])
        folder.mkdir(parents=True, exist_ok=True)
    result = run_rnn_study(seed=seed, **({"steps": steps} if steps else {}))
    written: list[Path] = []
    if plots:
        png = folder / "vanishing_rnn.png"
        atomic_write_bytes(png, plot_rnn_vanishing(result))
        record = folder / "vanishing_rnn.json"
        atomic_write_text(record, json.dumps(result.to_dict(), default=json_default, indent=1))
        written = [png, record]
    return RNNVanishingOutput(result=result, written=written)
