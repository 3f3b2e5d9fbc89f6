"""Exceptions chainrule raises for bad input.

Every error meant for a user derives from :class:`ChainruleError`, so the CLI can print its
message as one line and exit non-zero without a traceback. Each also derives from the built-in
exception a Python caller would expect (``ValueError`` for bad values, ``FileNotFoundError`` ...).
"""

from __future__ import annotations


class ChainruleError(Exception):
    """Base class of every user-facing chainrule error."""


class ShapeError(ChainruleError, ValueError):
    """An array has the wrong shape for the layer, loss or data it is given to."""


class DataError(ChainruleError, ValueError):
    """A dataset is malformed: bad file, NaN/Inf, labels out of range, empty or mismatched."""


class DataNotFoundError(ChainruleError, FileNotFoundError):
    """A dataset file or directory does not exist."""


class ModelFileError(ChainruleError, ValueError):
    """A saved model is corrupt, truncated, hostile or of an unknown version."""


class ConfigError(ChainruleError, ValueError):
    """An option, architecture or hyperparameter is invalid."""


class BackendError(ChainruleError, RuntimeError):
    """An array backend or device was asked for and is not available."""


class MissingDependencyError(ChainruleError, ImportError):
    """An optional dependency is needed for this feature and is not installed."""

    def __init__(self, package: str, feature: str, extra: str) -> None:
        super().__init__(
            f"{feature} needs the optional package '{package}': pip install 'chainrule[{extra}]'"
        )
        self.package = package
        self.extra = extra
