"""Training: the fit/evaluate loop, the three-stage step, callbacks and metrics."""
