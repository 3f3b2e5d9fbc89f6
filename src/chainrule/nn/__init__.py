"""The mathematics: each formula once, the layer contract and registry, losses, the driver.

Nothing here knows about training loops, files or the command line. ``nn`` imports only
:mod:`chainrule.backend` and :mod:`chainrule.errors`.
"""
