"""Seeing the backward pass: gradient checks, the trace read from the driver's tape, explanations."""
