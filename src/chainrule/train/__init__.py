"""Training: the fit/evaluate loop, the three-stage step, callbacks and metrics."""

from chainrule.train.callbacks import Callback, EarlyStopping, History, TrainState
from chainrule.train.clip import ClipGradNorm
from chainrule.train.loop import TrainingDiverged, fit
from chainrule.train.metrics import evaluate
from chainrule.train.step import GradHook, PlainRunner, make_runner

__all__ = [
    "Callback",
    "ClipGradNorm",
    "EarlyStopping",
    "GradHook",
    "History",
    "PlainRunner",
    "TrainState",
    "TrainingDiverged",
    "evaluate",
    "fit",
    "make_runner",
]
