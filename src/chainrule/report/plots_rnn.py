"""The figure of ``chainrule vanishing --rnn`` (:mod:`chainrule.studies.vanishing_rnn`)."""

from __future__ import annotations

import numpy as np

from chainrule.report.plots import _figure, _png
from chainrule.studies.vanishing_rnn import RNNVanishingResult

__all__ = ["plot_rnn_vanishing"]


def plot_rnn_vanishing(res: RNNVanishingResult) -> bytes:
    """``‖∂E/∂s_t‖ / ‖∂E/∂s_T‖`` (the state: ``h``, or ``(h, c)`` for the LSTM) against the distance from the loss, log scale, one line per net."""
    fig = _figure(7.0, 4.2)
    ax = fig.add_subplot(1, 1, 1)
    styles = {"rnn": "tab:red", "lstm": "tab:blue"}
    for cell, stages in res.norms.items():
        for stage, g in stages.items():
            g = np.asarray(g)
            ax.semilogy(
                np.arange(len(g)),
                g / g[0],
                color=styles[cell],
                linestyle="-" if stage == "trained" else "--",
                label=f"{'tanh RNN' if cell == 'rnn' else 'LSTM'}, {'after training' if stage == 'trained' else 'at init'}",
            )
    ax.set_xlabel("distance from the loss (time steps)")
    ax.set_ylabel("‖∂E/∂s_t‖ / ‖∂E/∂s_T‖  (s = h; (h, c) for the LSTM)")
    ax.set_title(
        f"Gradient through time, first-symbol task (T = {res.settings['seq_len']}, H = {res.settings['hidden']})"
    )
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    return _png(fig)
