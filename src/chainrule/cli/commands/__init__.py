"""Subcommands of the ``chainrule`` CLI, one module each (see :mod:`chainrule.cli`)."""
