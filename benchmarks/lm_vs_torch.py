"""The character LM of issue 9, chainrule and PyTorch side by side in one process.

Same text, same split, same windows in the same order, same initial weights (chainrule's, copied into
``nn.LSTM``/``nn.RNN`` + ``nn.Linear``), Adam, global-norm clipping, the hidden state carried between
windows. The two step functions alternate (chainrule step k, then PyTorch step k), so load on the
machine hits both alike; each step is timed on its own. Validation nats/char is measured for both
at the given steps. Prints one JSON object as its last line.

    python benchmarks/lm_vs_torch.py --text ../shared/data/shakespeare/eight_plays.txt \\
        --cell lstm --steps 3000 --eval-at 200,1000,2000,3000 --threads 1 --out FILE.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np
import torch
from threadpoolctl import threadpool_info, threadpool_limits

from chainrule.accel.recurrent import install
from chainrule.io.serialize import save
from chainrule.io.text import Vocabulary, read_text, split_text, stream_windows
from chainrule.jobs.lm import build_lm
from chainrule.nn.layers.recurrent import GRU, LSTM
from chainrule.optim import Adam
from chainrule.train.clip import ClipGradNorm
from chainrule.train.sequence import reset_state, tbptt_step, window_nats


class TorchLM(torch.nn.Module):
    """``one_hot -> nn.LSTM/GRU/RNN -> nn.Linear``, weights copied from chainrule's network. PyTorch's
    second bias ``b_hh`` is kept at zero (its gradient masked), as chainrule has one bias."""

    def __init__(self, net) -> None:
        super().__init__()
        onehot, rec, dense = net.layers
        self.vocab, h = onehot.vocab, rec.hidden
        if isinstance(rec, LSTM):
            self.rnn = torch.nn.LSTM(rec.in_features, h, batch_first=True)
        elif isinstance(rec, GRU):
            self.rnn = torch.nn.GRU(rec.in_features, h, batch_first=True)
        else:
            self.rnn = torch.nn.RNN(rec.in_features, h, nonlinearity=rec.activation, batch_first=True)
        self.out = torch.nn.Linear(h, self.vocab)
        mask = torch.zeros_like(self.rnn.bias_hh_l0)
        with torch.no_grad():
            self.rnn.weight_ih_l0.copy_(torch.tensor(rec.W.value.T))
            self.rnn.weight_hh_l0.copy_(torch.tensor(rec.U.value.T))
            self.rnn.bias_ih_l0.copy_(torch.tensor(rec.b.value))
            self.rnn.bias_hh_l0.zero_()
            if isinstance(rec, GRU):
                self.rnn.bias_hh_l0[2 * h :] = torch.tensor(rec.c.value)
                mask[2 * h :] = 1
            self.out.weight.copy_(torch.tensor(dense.W.value.T))
            self.out.bias.copy_(torch.tensor(dense.b.value))
        self.rnn.bias_hh_l0.register_hook(lambda g: g * mask)

    def forward(self, ids, state):
        y, state = self.rnn(torch.nn.functional.one_hot(ids, self.vocab).float(), state)
        return self.out(y), state


def _detach(state):
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()


def _windows_forever(ids, batch, seq_len):
    while True:
        fresh = True
        for x, y in stream_windows(ids, batch, seq_len):
            if x.shape[1] == seq_len:
                yield x, y, fresh
                fresh = False


def torch_nats(model: TorchLM, windows) -> float:
    total, count, state = 0.0, 0, None
    with torch.no_grad():
        for x, y in windows:
            logits, state = model(torch.tensor(x), state)
            loss = torch.nn.functional.cross_entropy(
                logits.reshape(-1, model.vocab), torch.tensor(y).reshape(-1)
            )
            total += loss.item() * y.size
            count += y.size
    return total / count


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--text")
    p.add_argument("--cell", default="lstm")
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--seq-len", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--lr", type=float, default=0.002)
    p.add_argument("--clip", type=float, default=5.0)
    p.add_argument("--eval-at", default="200,3000")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out")
    p.add_argument("--save", help="save chainrule's trained model (for chainrule sample)")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    text, name = read_text(a.text)
    vocab = Vocabulary.of(text)
    train_ids, val_ids = split_text(vocab.encode(text))
    val_batch = max(1, min(a.batch_size, (len(val_ids) - 1) // a.seq_len))
    net = build_lm(a.cell, len(vocab), a.hidden, a.seq_len, seed=a.seed)
    kernels = install(net)
    model = TorchLM(net)
    opt, clip = Adam(a.lr), ClipGradNorm(a.clip)
    topt = torch.optim.Adam(model.parameters(), lr=a.lr)
    eval_at = {int(s) for s in a.eval_at.split(",")}
    load_before = os.getloadavg()
    times = {"chainrule": [], "torch": []}
    evals = []
    state = None
    windows = _windows_forever(train_ids, a.batch_size, a.seq_len)
    with threadpool_limits(a.threads):
        blas = [
            {k: i.get(k) for k in ("internal_api", "num_threads", "architecture", "version")}
            for i in threadpool_info()
        ]
        for step in range(1, a.steps + 1):
            x, y, fresh = next(windows)
            if fresh:  # a new pass over the streams: both start from zero states
                reset_state(net)
                state = None
            t0 = time.perf_counter()
            tbptt_step(net, x.astype(np.float32), y, opt, [clip])
            times["chainrule"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            topt.zero_grad()
            logits, state = model(torch.tensor(x), state)
            loss = torch.nn.functional.cross_entropy(
                logits.reshape(-1, model.vocab), torch.tensor(y).reshape(-1)
            )
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), a.clip)
            topt.step()
            state = _detach(state)
            times["torch"].append(time.perf_counter() - t0)
            if step in eval_at:
                ours = window_nats(net, stream_windows(val_ids, val_batch, a.seq_len))
                net.train()
                theirs = torch_nats(model, stream_windows(val_ids, val_batch, a.seq_len))
                evals.append({"step": step, "chainrule": ours, "torch": theirs, "diff": ours - theirs})
                print(f"step {step}: val nats/char chainrule {ours:.4f}  torch {theirs:.4f}", file=sys.stderr)
            if step % 100 == 0:
                med = {k: float(np.median(v[-100:])) for k, v in times.items()}
                print(f"step {step}: s/step (median of last 100) {med}", file=sys.stderr)
    med = {k: float(np.median(v)) for k, v in times.items()}
    res = {
        "config": vars(a),
        "text": name,
        "vocab": len(vocab),
        "kernels": kernels,
        "median_step_seconds": med,
        "mean_step_seconds": {k: float(np.mean(v)) for k, v in times.items()},
        "ratio_median": med["chainrule"] / med["torch"],
        "ratio_of_sums": float(np.sum(times["chainrule"]) / np.sum(times["torch"])),
        "evals": evals,
        "step_seconds": times,
        "blas": blas,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "machine": platform.machine(),
        "load_before": load_before,
        "load_after": os.getloadavg(),
    }
    if a.save:
        info = {
            "kind": "chainrule-lm",
            "vocab": vocab.to_info(),
            "cell": a.cell,
            "hidden": a.hidden,
            "text": name,
            "steps": a.steps,
        }
        save(net, a.save, info=info)
    if a.out:
        with open(a.out, "w") as fh:
            json.dump(res, fh)
    short = {k: v for k, v in res.items() if k != "step_seconds"}
    print(json.dumps(short))


if __name__ == "__main__":
    main()
