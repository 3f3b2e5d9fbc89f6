"""Run the posts' sections: every formula check and every slip, per post."""

from __future__ import annotations

from chainrule.errors import ConfigError
from chainrule.studies.seeds import seed000, seed001, seed002, seed003, seed004
from chainrule.studies.seeds.common import Section, SeedCheck, Slip

__all__ = ["SECTIONS", "Results", "collect", "errata", "walkthrough"]

SECTIONS: dict[str, Section] = {
    s.seed: s for s in (seed000.SECTION, seed001.SECTION, seed002.SECTION, seed003.SECTION, seed004.SECTION)
}

Results = dict[str, tuple[list[SeedCheck], list[Slip]]]


def collect(seeds: list[str] | None = None) -> Results:
    """Run the checks of ``seeds`` (default all) once: ``{seed: (checks, slips)}``."""
    out = {}
    for s in seeds or list(SECTIONS):
        if s not in SECTIONS:
            raise ConfigError(f"unknown seed {s!r}; choose {', '.join(SECTIONS)}")
        out[s] = SECTIONS[s].evaluate()
    return out


def walkthrough(seeds: list[str] | None = None) -> list[SeedCheck]:
    """Every formula of the posts (or of ``seeds``), its implementation and a live check."""
    return [c for checks, _ in collect(seeds).values() for c in checks]


def errata(seeds: list[str] | None = None) -> list[Slip]:
    """Every slip found in the posts (or in ``seeds``), each with its live check (or marked text-only)."""
    return [s for _, slips in collect(seeds).values() for s in slips]
