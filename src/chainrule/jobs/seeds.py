"""The five seed posts formula by formula: run the live checks, render them, say if all passed."""

from __future__ import annotations

from dataclasses import dataclass

from chainrule.studies.seeds import collect, render

__all__ = ["SeedsConfig", "SeedsOutput", "run_seeds"]


@dataclass
class SeedsConfig:
    only: list[str] | None = None  # seed keys such as "002"; None: all five
    format: str = "text"  # text, markdown or json
    errata: bool = False  # the slips only


@dataclass
class SeedsOutput:
    text: str
    ok: bool  # every check passed and every checked slip was confirmed


def run_seeds(cfg: SeedsConfig) -> SeedsOutput:
    results = collect(cfg.only)
    text = render(fmt=cfg.format, only_errata=cfg.errata, results=results)
    ok = all(c.passed for cs, _ in results.values() for c in cs) and all(
        s.confirmed for _, ss in results.values() for s in ss if s.checked
    )
    return SeedsOutput(text=text, ok=ok)
