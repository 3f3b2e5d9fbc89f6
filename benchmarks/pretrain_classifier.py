"""DBN pre-training on a deep sigmoid classifier (issue 10, acceptance 4; seed 004's vanishing case).

784-500-500-500-500-10 sigmoid network, softmax cross-entropy, plain SGD. Two runs from the same
data and the same fine-tuning budget:

* ``pretrained``: a stack of four RBMs (CD-1, Hinton's recipe: lr 0.1, momentum 0.5 → 0.9, weight
  decay 2e-4, mean-field reconstructions) trained greedily, unrolled, a fresh softmax layer on top;
* ``random``: the same network from chainrule's default initialisation for sigmoid (Xavier).

Reported: test accuracy after every fine-tuning epoch, and the per-layer gradient norms ‖∂E/∂W^l‖
(Frobenius) on a fixed batch of 1000 training images at the start and the end of fine-tuning.

    nice -n 10 python benchmarks/pretrain_classifier.py --train-images 10000 --pretrain-epochs 2 \\
        --epochs 5 --json benchmarks/results/unsupervised/pretrain_classifier.json
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from chainrule.io import load_data
from chainrule.nn.builders import mlp
from chainrule.nn.layers import Dense
from chainrule.train import fit
from chainrule.train.callbacks import Callback
from chainrule.unsupervised import pretrain_rbms, unroll_classifier


def grad_norms(net, x, y) -> list[float]:
    net.gradients(x, y)
    return [float(np.linalg.norm(layer.W.grad)) for layer in net.layers if isinstance(layer, Dense)]


class TestAccuracy(Callback):
    def __init__(self, net, x, y) -> None:
        self.net, self.x, self.y = net, x, y

    def on_epoch_end(self, epoch, logs):
        logs["test_accuracy"] = float(np.mean(self.net.predict(self.x) == self.y))
        print(f"  epoch {epoch}: loss {logs['loss']:.4f} test accuracy {logs['test_accuracy']:.4f} "
              f"({logs['seconds']:.1f}s)", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", default="../shared/data/mnist")
    ap.add_argument("--sizes", default="784,500,500,500,500")
    ap.add_argument("--train-images", type=int, default=10000)
    ap.add_argument("--pretrain-epochs", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--json")
    a = ap.parse_args()
    d = load_data("mnist", a.data_dir)
    x, y = d.x_train[: a.train_images], d.y_train[: a.train_images]
    probe_x, probe_y = x[:1000], y[:1000]
    sizes = [int(s) for s in a.sizes.split(",")]
    res: dict = {"sizes": [*sizes, 10], "train_images": int(x.shape[0]), "epochs": a.epochs, "lr": a.lr,
                 "batch_size": a.batch_size, "pretrain_epochs": a.pretrain_epochs, "optimizer": "sgd"}
    t0 = time.perf_counter()
    stack = pretrain_rbms(x, sizes, epochs=a.pretrain_epochs, linear_top=False,
                          progress=lambda l, e, s, err: print(f"pre-train layer {l} epoch {e}: {err:.3f} ({s:.1f}s)",
                                                              flush=True))
    res["pretrain_seconds"] = time.perf_counter() - t0
    for name, net in (("pretrained", unroll_classifier(stack, 10, seed=0)),
                      ("random", mlp([*sizes, 10], "sigmoid", loss="softmax-ce", seed=0))):
        print(name, flush=True)
        before = grad_norms(net, probe_x, probe_y)
        hist = fit(net, x, y, optimizer="sgd", lr=a.lr, batch_size=a.batch_size, epochs=a.epochs, seed=0,
                   progress=False, callbacks=[TestAccuracy(net, d.x_test, d.y_test)])
        res[name] = {
            "test_accuracy": [e["test_accuracy"] for e in hist.epochs],
            "train_loss": [e["loss"] for e in hist.epochs],
            "epoch_seconds": [e["seconds"] for e in hist.epochs],
            "grad_norms_start": before,
            "grad_norms_end": grad_norms(net, probe_x, probe_y),
        }
    print(json.dumps(res, indent=1))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
