"""The old module path of the fast runners, kept while callers move to :mod:`chainrule.accel`
(``limit_threads`` now lives in :mod:`chainrule.backend.threads`)."""

from chainrule.accel.dispatch import make_fast_runner
from chainrule.accel.numpy_ops import NumpyOps
from chainrule.accel.plan import Block, plan_blocks
from chainrule.accel.runner import FastRunner
from chainrule.backend.threads import limit_threads

__all__ = ["Block", "FastRunner", "NumpyOps", "limit_threads", "make_fast_runner", "plan_blocks"]
