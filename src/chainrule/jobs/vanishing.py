"""The vanishing/exploding gradient study of seed 004: run it, then write its PNG plots and
``vanishing.json`` into an output folder."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from chainrule._io import atomic_write_text, json_default
from chainrule.errors import ConfigError
from chainrule.io import load_data
from chainrule.jobs.common import Log, check_writable, require_packages, say
from chainrule.report.plots import plot_vanishing
from chainrule.studies.vanishing import StudyResult, run_study

__all__ = ["VanishingConfig", "VanishingOutput", "run_vanishing"]


@dataclass
class VanishingConfig:
    """What ``chainrule vanishing`` is asked to do; ``None`` means the preset's value (quick or full)."""

    quick: bool = False
    out: str = "."
    data: str = "default"
    data_dir: str | None = None
    seed: int = 0
    steps: int | None = None
    depths: list[int] | None = None
    width: int = 30
    plots: bool = True  # PNGs and vanishing.json into ``out``
    progress: bool = True


@dataclass
class VanishingOutput:
    result: StudyResult
    written: list[Path] = field(default_factory=list)


def run_vanishing(cfg: VanishingConfig, *, log: Log = None) -> VanishingOutput:
    """Refuses a file as ``out`` and a missing matplotlib before minutes of training, not after;
    ``out`` is created like ``mkdir -p``. ``log`` receives status lines (the dataset)."""
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {cfg.out}: exists and is not a directory")
    if cfg.plots:
        out.mkdir(parents=True, exist_ok=True)
        check_writable(out / "vanishing.json", "--out")
        require_packages([("matplotlib", "plots", "plot", True)])
    data = load_data(cfg.data, cfg.data_dir)
    say(log, data.summary())
    result = run_study(
        quick=cfg.quick,
        data=data,
        depths=cfg.depths,
        width=cfg.width,
        steps=cfg.steps,
        seed=cfg.seed,
        progress=cfg.progress,
    )
    written: list[Path] = []
    if cfg.plots:
        written = list(plot_vanishing(result, out))
        record = out / "vanishing.json"
        atomic_write_text(record, json.dumps(result.to_dict(series=True), default=json_default, indent=1))
        written.append(record)
    return VanishingOutput(result=result, written=written)
