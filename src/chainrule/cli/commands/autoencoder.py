"""``chainrule autoencoder``: a deep autoencoder with optional greedy pre-training, against PCA."""

from __future__ import annotations

import argparse
import sys

from chainrule.cli.commands import _common as c
from chainrule.jobs.autoencoder import AutoencoderConfig, run_autoencoder

NAME = "autoencoder"
HELP = "train a deep autoencoder (pre-trained by RBMs/autoencoders or not) and compare it with PCA"
DESCRIPTION = (
    "Build a deep autoencoder from encoder sizes (input first, code last), pre-train it layer by "
    "layer as a stack of RBMs (Hinton & Salakhutdinov 2006) or of autoencoders, or not at all, "
    "unroll it and fine-tune it by backprop; report the test squared error per image beside PCA "
    "with the same code size fitted on the same training images."
)


def _sparsity(text: str) -> tuple[float, float]:
    try:
        rho, beta = (float(t) for t in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--sparsity takes RHO,BETA like 0.05,3, got {text!r}") from None
    return rho, beta


def add_arguments(p: argparse.ArgumentParser) -> None:
    c.add_data_args(p, default="mnist")
    p.add_argument("--layers", type=c.int_list(2, 1, "layers", "784,1000,500,250,30"),
                   default=[784, 1000, 500, 250, 30], help="encoder sizes, input first, code last")
    p.add_argument("--seed", type=c.nonneg_int, default=0)
    p.add_argument("--out", metavar="DIR", help="write reconstructions.png (codes.png for 2-D) and autoencoder.json")
    p.add_argument("--save", metavar="MODEL", help="save the fine-tuned autoencoder (.safetensors)")
    p.add_argument("--pretrain", choices=["rbm", "autoencoder", "none"], default="rbm")
    p.add_argument("--pretrain-epochs", type=c.positive_int, default=10, help="epochs per layer (default 10)")
    p.add_argument("--pretrain-lr", type=c.positive_float, help="default 0.1 (RBM CD-1), 1e-3 (autoencoder, Adam)")
    p.add_argument("--epochs", type=c.nonneg_int, default=10, help="fine-tuning epochs (default 10)")
    p.add_argument("--optimizer", default="adam", help="fine-tuning optimiser (default adam)")
    p.add_argument("--lr", type=c.positive_float, default=1e-3)
    p.add_argument("--batch-size", type=c.positive_int, default=100, help="fine-tuning batch (default 100)")
    p.add_argument("--pretrain-batch-size", type=c.positive_int, default=100, help="pre-training batch (default 100)")
    p.add_argument("--loss", choices=["bce", "squared"], default="bce", help="reconstruction loss")
    p.add_argument("--tied", action="store_true", help="decoder weights are the encoder's, transposed")
    p.add_argument("--noise", type=c.fraction, default=0.0, help="masking noise level (denoising)")
    p.add_argument("--sparsity", type=_sparsity, metavar="RHO,BETA", help="KL sparsity penalty on the code")
    p.add_argument("--code-activation", default="identity", help="identity (linear code) or sigmoid ...")
    p.add_argument("--train-images", type=c.positive_int, help="use only the first N training images")
    p.add_argument("--eval-every", type=c.nonneg_int, default=1, help="test error every N epochs (0: end only)")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    p.add_argument("--quiet", action="store_true")


def run(args: argparse.Namespace) -> int:
    cfg = c.config_from(AutoencoderConfig, args, progress=not args.quiet)
    res = run_autoencoder(cfg, log=lambda msg: c.status(msg, args.quiet))
    s = res.summary
    if not args.quiet:
        print(
            f"test squared error per image: autoencoder {s['test_squared_error_per_image']:.3f}, "
            f"PCA({s['layers'][-1]}) {s['pca_squared_error_per_image']:.3f}  "
            f"(pre-training {s['pretrain']}: {s['pretrain_seconds']:.0f}s, fine-tuning "
            f"{s['fine_tune_epochs']} epochs: {s['fine_tune_seconds']:.0f}s)",
            file=sys.stderr if args.json else sys.stdout,
        )
        for path in res.written:
            print(f"wrote {path}", file=sys.stderr)
    if args.json:
        c.json_line({**s, "written": [str(p) for p in res.written]})
    return 0
