"""Turn a saved run record (``chainrule train --log RUN.json``) into one self-contained HTML file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from chainrule.jobs.common import check_outputs
from chainrule.report.html import write_report
from chainrule.report.record import RunRecord

__all__ = ["ReportConfig", "run_report"]


@dataclass
class ReportConfig:
    run: str
    out: str = "report.html"
    title: str | None = None


def run_report(cfg: ReportConfig) -> Path:
    """Validate the record, write the HTML atomically; returns its path. A bad record is a
    :class:`~chainrule.report.record.RunRecordError`, a missing one ``FileNotFoundError``."""
    check_outputs({"--out": cfg.out}, {"RUN.json": cfg.run})
    record = RunRecord.load(cfg.run)
    return write_report(record, Path(cfg.out), title=cfg.title)
