"""Nielsen's chapter 6 convolutional nets on real MNIST, trained by chainrule (see docs/cnn.md).

Prints one JSON line per epoch (train loss, test accuracy, wall time so far), so a run cut short
still says what it reached. Momentum SGD with a step schedule (``lr`` until ``--drop-at`` of the
epochs, then ``lr/10``) or, with ``--schedule cosine``, ``lr · (1 + cos(π (e-1)/E)) / 2`` for epoch
``e`` of ``E``.

    python benchmarks/nielsen_ch6.py --net relu-l2 --epochs 20 --data-dir ../shared/data/mnist
    python benchmarks/nielsen_ch6.py --net dropout --augment shift --epochs 7 --data-dir ...
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

import numpy as np

from chainrule.backend.threads import limit_threads
from chainrule.io import load_data
from chainrule.io.augment import augment
from chainrule.nn.spec import build
from chainrule.optim import get_optimizer
from chainrule.train import evaluate, fit

NETS = {
    # conv 20×5×5 + pool, conv 40×5×5 + pool, FC 100, all ReLU; L2 (Nielsen λ = 0.1)
    "relu-l2": "conv:20:5 relu maxpool:2 conv:40:5 relu maxpool:2 flatten dense:100 relu dense:10",
    # Nielsen's final single net: dropout 0.5 on the inputs of the three fully connected layers
    "dropout": (
        "conv:20:5 relu maxpool:2 conv:40:5 relu maxpool:2 flatten dropout:0.5 dense:1000 relu "
        "dropout:0.5 dense:1000 relu dropout:0.5 dense:10"
    ),
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--net", choices=list(NETS), required=True)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--schedule", choices=["step", "cosine"], default="step")
    p.add_argument("--drop-at", type=float, default=0.7, help="fraction of epochs after which lr /= 10")
    p.add_argument("--nielsen-lambda", type=float, default=0.0, help="Nielsen's λ of λ/(2n) ΣW²")
    p.add_argument(
        "--l2",
        type=float,
        default=None,
        help="chainrule's λ' of (λ'/2) ΣW² directly (overrides --nielsen-lambda)",
    )
    p.add_argument("--augment", choices=["shift"])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    data = load_data("mnist", args.data_dir)
    x, y = augment(args.augment, data.x_train, data.y_train, (1, 28, 28))
    # Nielsen: C = C0 + λ/(2n) ΣW²; chainrule: C = C0 + (λ'/2) ΣW²  =>  λ' = λ / n (n: training-set size)
    l2 = args.nielsen_lambda / len(x) if args.l2 is None else args.l2
    net = build(NETS[args.net], (1, 28, 28), seed=args.seed)
    opt = get_optimizer("momentum", args.lr, momentum=args.momentum)
    print(json.dumps({**vars(args), "net": args.net, "spec": NETS[args.net], "n_train": len(x), "l2": l2}))
    with limit_threads(args.threads):
        for epoch in range(1, args.epochs + 1):
            if args.schedule == "cosine":
                opt.lr = args.lr * (1 + math.cos(math.pi * (epoch - 1) / args.epochs)) / 2
            else:
                opt.lr = args.lr if epoch <= round(args.drop_at * args.epochs) else args.lr / 10
            h = fit(
                net,
                x,
                y,
                optimizer=opt,
                batch_size=args.batch_size,
                epochs=1,
                l2=l2,
                seed=args.seed + epoch,
                progress=False,
            )
            ev = evaluate(net, data.x_test, data.y_test)
            line = {
                "epoch": epoch,
                "lr": round(opt.lr, 7),
                "train_loss": round(h.epochs[-1]["loss"], 5),
                "epoch_seconds": round(h.epochs[-1]["seconds"], 1),
                "test_accuracy": round(float(ev["accuracy"]), 5),
                "wall_seconds": round(time.perf_counter() - t0, 1),
                "cpu_seconds": round(time.process_time(), 1),
            }
            print(json.dumps(line), flush=True)
    print(json.dumps({"final_test_accuracy": line["test_accuracy"], "wall_seconds": line["wall_seconds"]}))
    return 0


if __name__ == "__main__":
    np.seterr(over="ignore")
    sys.exit(main())
