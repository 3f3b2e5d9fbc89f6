"""Data-parallel scaling on this machine: chainrule over MPI, side by side with PyTorch DDP (gloo).

One command, one table (``--json``: one JSON object as the last line)::

    flock /tmp/chainrule-bench.lock python benchmarks/mpi_bench.py [--steps 100] [--rounds 3]
        [--batch 128] [--ranks 2,4,8] [--cnn SPEC] [--no-ddp] [--json]
    python benchmarks/mpi_bench.py --ab-sweep 64,128,256,512 [--rounds 5] [--json]

What runs (every rank with one BLAS/OpenMP/torch thread; ``OPENBLAS_CORETYPE`` and
``OPENBLAS_L2_SIZE`` removed from the environment):

* ``chainrule 1x1``: one process, the fast runner with nothing attached (fused SGD: the fastest
  single-process step, the fair baseline);
* ``chainrule 1x1 unfused``: one process with a do-nothing gradient hook, which makes the fast
  runner write every gradient out before the update (what each rank does);
* ``chainrule 2x1``: ``mpiexec -n 2``, each rank half of every global batch, the gradients summed
  in one flat buffer (stage two of the step) by the default method: on one host, the sum in a
  shared-memory window (``shm``);
* ``chainrule 2x1 MPI_Allreduce``: the same with ``CHAINRULE_ALLREDUCE=mpi``, one in-place
  ``MPI_Allreduce`` over the flat buffer (what runs across hosts);
* ``chainrule 2x1 overlap``: the same with a non-blocking Iallreduce started per layer during
  backward;
* ``2 independent 1x1 (no comm)``: two one-process runs started together, each on its own batch
  (weak) or half the global batch (strong), with no communication at all; their efficiency is the
  ceiling set by the two cores contending for memory and cache, which no gradient sum can beat;
* ``torch 1x1`` and ``ddp 2x1``: the same network in PyTorch (eager autograd), alone and under
  ``DistributedDataParallel`` with the gloo backend;
* ``chainrule Nx1`` for each ``--ranks`` (oversubscribed past the cores: with and without
  ``MPIR_CVAR_ENABLE_HEAVY_YIELD=1``, which ``--workers`` sets then);
* ``efficiency-ab``: one 2-rank job alternating blocks of the 1x1 step (rank 1 napping), the
  2x1 step and the independent pair, so that the machine's drift hits all three alike; on this
  noisy 2-core VM it is the steadier estimate of the efficiency and of its ceiling;
* an Allreduce sweep (0.25-4 MB, 2 ranks) whose least-squares line gives the cost per MB, and
  from it a model of the step time on 8-64 hosts (assumptions in the output and in
  docs/distributed.md).

Each configuration is timed ``--rounds`` times, the rounds interleaved (1x1, 2x1, DDP, ...), and
the median round is reported: time per step (the slowest rank's), samples per second, and the
share of the step spent in the gradient Allreduce (including the wait for the slower rank).
Efficiency = throughput(2 ranks x 1 thread) / (2 x throughput(1 rank x 1 thread)).

``--batch`` is the global batch of every run (strong scaling: N ranks split it). With ``--weak`` it is
the batch of each rank instead: N ranks train on global batches of N x ``--batch`` (PyTorch DDP
too), the usual way data-parallel throughput is compared.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from chainrule.backend.threads import limit_threads
from chainrule.io import load_data
from chainrule.nn.builders import mlp
from chainrule.optim import get_optimizer
from chainrule.parallel import GradAllreduce, ShardedRunner, current_world
from chainrule.parallel.launch import find_mpiexec
from chainrule.train.step import make_runner

HERE = Path(__file__).resolve()
MLP = [784, 256, 128, 10]
LR = 0.1


# -- workers (one per rank) -------------------------------------------------------------------
def _data() -> tuple[np.ndarray, np.ndarray]:
    data = load_data("default")  # the embedded MNIST subset: 6000 x 784, float32
    return np.ascontiguousarray(data.x_train, dtype=np.float32), np.asarray(data.y_train)


def _order(n_rows: int, steps: int, batch: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    reps = -(-steps * batch // n_rows)
    return np.concatenate([rng.permutation(n_rows) for _ in range(reps)])[: steps * batch]


def _chainrule_net(cnn: str | None) -> Any:
    if cnn:
        from chainrule.nn.spec import build  # the layer-spec language (CNN words, when registered)

        return build(cnn, (1, 28, 28), seed=0, dtype=np.float32)
    return mlp(MLP, "relu", seed=0, dtype=np.float32)


def worker_chainrule(args: argparse.Namespace) -> dict[str, Any]:
    world = current_world()
    x, y = _data()
    if args.cnn:
        x = x.reshape(-1, 1, 28, 28)
    net = _chainrule_net(args.cnn)
    net.train()
    opt = get_optimizer("sgd", LR)
    reducer = None
    if world.distributed:
        reducer = GradAllreduce(world, net.params, overlap=args.overlap)
        runner: Any = ShardedRunner(make_runner(net, opt, 0.0, grad_hooks=[reducer]), world, reducer)
    elif args.hooked:  # one process with a do-nothing hook: the unfused step the ranks run
        runner = make_runner(net, opt, 0.0, grad_hooks=[lambda params: None])
    else:
        runner = make_runner(net, opt, 0.0)
    order = _order(len(x), args.warmup + args.steps, args.batch)
    split = args.warmup * args.batch
    with limit_threads(1):
        runner.run_epoch(x, y, order[:split], args.batch, lambda: None)
        world.barrier()
        comm0 = reducer.seconds if reducer else 0.0
        t0 = time.perf_counter()
        runner.run_epoch(x, y, order[split:], args.batch, lambda: None)
        elapsed = time.perf_counter() - t0
        comm = (reducer.seconds - comm0) if reducer else 0.0
    rows = world.allgather((elapsed, comm))
    summary = _summary(args, runner.name, [r[0] for r in rows], [r[1] for r in rows], reducer)
    summary["method"] = reducer.method if reducer else None
    return summary


def worker_overlap_ab(args: argparse.Namespace) -> dict[str, Any]:
    """One 2-rank job alternating blocks of steps with and without per-layer Iallreduce, so that
    load from elsewhere hits both alike; the median block of each, in ms per step."""
    world = current_world()
    x, y = _data()
    net = _chainrule_net(None)
    net.train()
    opt = get_optimizer("sgd", LR)
    reducer = GradAllreduce(world, net.params, method="mpi")  # overlap is an MPI_Iallreduce
    runner = ShardedRunner(make_runner(net, opt, 0.0, grad_hooks=[reducer]), world, reducer)
    block = 20
    order = _order(len(x), block * (2 * args.rounds * 2 + 1), args.batch)
    times: dict[bool, list[float]] = {False: [], True: []}
    with limit_threads(1):
        runner.run_epoch(x, y, order[: block * args.batch], args.batch, lambda: None)
        for k in range(4 * args.rounds):
            reducer.overlap = bool(k % 2)
            chunk = order[(k + 1) * block * args.batch : (k + 2) * block * args.batch]
            world.barrier()
            t0 = time.perf_counter()
            runner.run_epoch(x, y, chunk, args.batch, lambda: None)
            times[reducer.overlap].append(max(world.allgather(time.perf_counter() - t0)))
    return {f"{'on' if k else 'off'}": 1e3 * statistics.median(v) / block for k, v in times.items()}


def _idle_barrier(world: Any) -> None:
    """A barrier that sleeps while it waits: MPICH's own barrier spins and would take the core,
    and short sleeps wake the idle rank thousands of times a second, which the scheduler may
    serve on the busy core; 5 ms naps cost the timed rank nothing."""
    req = world.comm.Ibarrier()
    while not req.Test():
        time.sleep(0.005)


def worker_efficiency_ab(args: argparse.Namespace) -> dict[str, Any]:
    """One 2-rank job that alternates blocks of ``--block`` steps of three kinds, so that load
    from elsewhere hits all three alike:

    * ``1x1``: rank 0 alone runs the single-process fused step on ``--batch`` rows while rank 1
      sleeps (a sleeping wait, not MPI's spinning one);
    * ``2x1``: both ranks run the data-parallel step (the default sum), ``--batch`` rows each;
    * ``pair``: both ranks run the single-process step on their own rows, no communication (the
      ceiling the two cores' contention leaves).

    Returns the median block of each, in ms per step, and the efficiencies they give (weak
    scaling: ``--batch`` rows per rank)."""
    world = current_world()
    x, y = _data()
    if args.cnn:
        x = x.reshape(-1, 1, 28, 28)
    alone_net, dp_net = _chainrule_net(args.cnn), _chainrule_net(args.cnn)
    alone_net.train()
    dp_net.train()
    alone = make_runner(alone_net, get_optimizer("sgd", LR), 0.0)
    reducer = GradAllreduce(world, dp_net.params)
    dp = ShardedRunner(
        make_runner(dp_net, get_optimizer("sgd", LR), 0.0, grad_hooks=[reducer]), world, reducer
    )
    block, b = args.block, (args.batch_per_rank or args.batch)
    rows = {"1x1": block * b, "2x1": block * b * world.size, "pair": block * b}
    times: dict[str, list[float]] = {k: [] for k in rows}
    rng = np.random.default_rng(0)  # the same draws on every rank: one global order for 2x1
    with limit_threads(1):
        for kind in ("1x1", "2x1", "pair"):  # warm-up: one block of each
            order = rng.integers(0, len(x), rows[kind])
            if kind != "1x1" or world.rank == 0:
                (dp if kind == "2x1" else alone).run_epoch(
                    x, y, order, b * (world.size if kind == "2x1" else 1), lambda: None
                )
            _idle_barrier(world)
        for k in range(3 * args.rounds * 3):
            kind = ("1x1", "2x1", "pair")[k % 3]
            order = rng.integers(0, len(x), rows[kind])
            world.barrier()
            t0 = time.perf_counter()
            if kind == "2x1":
                dp.run_epoch(x, y, order, b * world.size, lambda: None)
            elif kind == "pair" or world.rank == 0:
                alone.run_epoch(x, y, order, b, lambda: None)
            elapsed = time.perf_counter() - t0
            if kind == "1x1":  # rank 1 naps while rank 0 runs alone
                _idle_barrier(world)
            times[kind].append(max(world.allgather(elapsed if kind != "1x1" or world.rank == 0 else 0.0)))
    reducer.close()
    ms = {k: 1e3 * statistics.median(v) / block for k, v in times.items()}
    return {
        "block_steps": block,
        "blocks_each": len(times["1x1"]),
        "batch_per_rank": b,
        "step_ms": ms,
        "efficiency_2x1": ms["1x1"] / ms["2x1"],
        "ceiling_no_comm": ms["1x1"] / ms["pair"],
    }


def _summary(
    args: argparse.Namespace, runner: str, elapsed: list[float], comm: list[float], reducer: Any
) -> dict:
    slowest = max(elapsed)
    return {
        "runner": runner,
        "ranks": len(elapsed),
        "step_ms": 1e3 * slowest / args.steps,
        "samples_per_s": args.steps * args.batch / slowest,
        "comm_share": statistics.mean(c / e for c, e in zip(comm, elapsed, strict=True)),
        "comm_ms": 1e3 * statistics.mean(comm) / args.steps,
        "buffer_mb": (reducer.nbytes / 2**20) if reducer else 0.0,
    }


def _torch_model(cnn: str | None) -> Any:
    import torch  # optional: the PyTorch side of the comparison

    if not cnn:
        return torch.nn.Sequential(
            torch.nn.Linear(784, 256),
            torch.nn.ReLU(),
            torch.nn.Linear(256, 128),
            torch.nn.ReLU(),
            torch.nn.Linear(128, 10),
        )
    mods: list[Any] = []
    for word in cnn.split():
        name, *nums = word.split(":")
        n = [int(v) for v in nums]
        if name == "conv":
            stride, pad = (n[2] if len(n) > 2 else 1), (n[3] if len(n) > 3 else 0)  # conv:OUT:K[:S[:P]]
            mods.append(torch.nn.LazyConv2d(n[0], n[1], stride=stride, padding=pad))
        elif name == "maxpool":
            mods.append(torch.nn.MaxPool2d(n[0]))
        elif name == "dense":
            mods.append(torch.nn.LazyLinear(n[0]))
        else:
            mods.append({"relu": torch.nn.ReLU, "flatten": torch.nn.Flatten, "tanh": torch.nn.Tanh}[name]())
    model = torch.nn.Sequential(*mods)
    model(torch.zeros(1, 1, 28, 28))  # materialise the lazy layers
    return model


def worker_torch(args: argparse.Namespace) -> dict[str, Any]:
    import torch  # optional: the PyTorch side of the comparison
    import torch.distributed as dist  # optional: DDP with gloo

    torch.set_num_threads(1)
    rank, size = int(os.environ.get("PMI_RANK", "0")), int(os.environ.get("PMI_SIZE", "1"))
    x, y = _data()
    if args.cnn:
        x = x.reshape(-1, 1, 28, 28)
    torch.manual_seed(0)
    model = _torch_model(args.cnn)
    if size > 1:
        dist.init_process_group(
            "gloo", init_method=f"tcp://127.0.0.1:{args.port}", rank=rank, world_size=size
        )
        model = torch.nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    loss_fn = torch.nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))
    order = torch.from_numpy(_order(len(x), args.warmup + args.steps, args.batch))
    lo, hi = rank * args.batch // size, (rank + 1) * args.batch // size

    def run(steps: range) -> None:
        for s in steps:
            idx = order[s * args.batch + lo : s * args.batch + hi]
            loss = loss_fn(model(xt[idx]), yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    run(range(args.warmup))
    if size > 1:
        dist.barrier()
    t0 = time.perf_counter()
    run(range(args.warmup, args.warmup + args.steps))
    elapsed = time.perf_counter() - t0
    if size > 1:
        out = [None] * size
        dist.all_gather_object(out, elapsed)
        dist.destroy_process_group()
        elapsed_all = [float(v) for v in out]
    else:
        elapsed_all = [elapsed]
    name = "ddp-gloo" if size > 1 else "torch-eager"
    return _summary(args, name, elapsed_all, [0.0] * size, None)


def worker_allreduce(args: argparse.Namespace) -> dict[str, Any]:
    from mpi4py import MPI  # optional: the mpi extra

    world = current_world()
    out = {}
    for mb in (0.25, 0.5, 1.0, 2.0, 4.0):
        buf = np.ones(int(mb * 2**20) // 4, np.float32)
        times = []
        for i in range(25):
            world.comm.Barrier()
            t0 = time.perf_counter()
            world.comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
            if i >= 5:
                times.append(time.perf_counter() - t0)
        out[str(mb)] = statistics.median(world.allgather(statistics.median(times)))
    return {"allreduce_s": out}


# -- the driver ----------------------------------------------------------------------------------
def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    env.update({"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    src = str(HERE.parents[1] / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _batch(args: argparse.Namespace, worker: str, ranks: int) -> int:
    """The batch a command is given: global for a job of ranks (weak: ranks x --batch); for the
    independent pair, each run's own (weak: --batch; strong: half of it)."""
    if worker == "pair":
        return args.batch if args.weak else args.batch // 2
    return args.batch * (ranks if args.weak and worker in ("chainrule", "torch") else 1)


def _run(
    args: argparse.Namespace, worker: str, ranks: int, *extra: str, env: dict[str, str] | None = None
) -> dict[str, Any]:
    cmd = [
        sys.executable,
        str(HERE),
        "--worker",
        worker,
        "--steps",
        str(args.steps),
        "--warmup",
        str(args.warmup),
        "--batch",
        str(_batch(args, worker, ranks)),
        "--port",
        str(_free_port()),
        *extra,
    ]
    if args.cnn:
        cmd += ["--cnn", args.cnn]
    if ranks > 1 or worker == "allreduce":
        cmd = [find_mpiexec() or "mpiexec", "-n", str(ranks), *cmd]
    if worker == "pair":  # two independent one-rank runs at once, no communication at all
        cmd[cmd.index("pair")] = "chainrule"
        procs = [
            subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
            for _ in range(2)
        ]
        outs = [p.communicate(timeout=600) for p in procs]
        if any(p.returncode for p in procs):
            raise SystemExit(f"mpi_bench: independent pair failed:\n{outs[0][1][-2000:]}")
        runs = [json.loads(o[0].strip().splitlines()[-1]) for o in outs]
        slow = max(runs, key=lambda d: d["step_ms"])
        return {**slow, "samples_per_s": 2 * slow["samples_per_s"], "ranks": 2}
    r = subprocess.run(cmd, capture_output=True, text=True, env={**_env(), **(env or {})}, timeout=600)
    if r.returncode != 0 and worker == "torch":  # gloo's teardown sometimes dies after the timing
        r = subprocess.run(cmd, capture_output=True, text=True, env={**_env(), **(env or {})}, timeout=600)
    if r.returncode != 0:
        raise SystemExit(f"mpi_bench: {worker} x{ranks} failed:\n{r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def _median_round(runs: list[dict[str, Any]]) -> dict[str, Any]:
    runs = sorted(runs, key=lambda d: d["step_ms"])
    best = dict(runs[len(runs) // 2])
    best["step_ms_rounds"] = [round(d["step_ms"], 3) for d in runs]
    return best


def _model(
    cost_s: dict[str, float], step_1: dict[str, Any], batch: int, per_rank: int, mb: float
) -> dict[str, Any]:
    """Step time on P hosts, one rank per host, per-rank batch fixed (weak scaling)."""
    sizes = np.array([float(k) for k in cost_s])
    secs = np.array(list(cost_s.values()))
    beta, alpha2 = np.polyfit(sizes, secs, 1)  # 2 ranks: t = 2α + M β  (β: s per MB per link)
    alpha = max(alpha2 / 2, 1e-6)
    t_compute = step_1["step_ms"] / 1e3 * per_rank / batch  # one rank's share of a global batch
    nets = {
        "loopback-measured": (alpha, beta),
        "10GbE (1.25 GB/s, 50 us)": (50e-6, 1 / 1250),
        "100Gb IB (12.5 GB/s, 2 us)": (2e-6, 1 / 12500),
    }
    table = {}
    for name, (a, b) in nets.items():
        rows = []
        for p in (8, 16, 32, 64):
            t_ar = 2 * np.log2(p) * a + 2 * (p - 1) / p * mb * b  # Rabenseifner: reduce-scatter + allgather
            rows.append(
                {
                    "hosts": p,
                    "step_ms": 1e3 * (t_compute + t_ar),
                    "comm_share": t_ar / (t_compute + t_ar),
                    "efficiency": t_compute / (t_compute + t_ar),
                }
            )
        table[name] = rows
    return {
        "allreduce_ms_at_buffer": 1e3 * (alpha2 + beta * mb),
        "ms_per_mb": 1e3 * beta,
        "latency_us": 1e6 * alpha,
        "compute_ms_per_rank": 1e3 * t_compute,
        "per_rank_batch": per_rank,
        "buffer_mb": mb,
        "hosts": table,
    }


def _blas() -> Any:
    try:
        from threadpoolctl import threadpool_info  # optional: BLAS details only

        return [
            {k: d.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
            for d in threadpool_info()
        ]
    except ImportError:  # pragma: no cover
        return None


def drive(args: argparse.Namespace) -> dict[str, Any]:
    load0 = os.getloadavg()
    rounds: dict[str, list[dict[str, Any]]] = {}
    plan = [
        ("chainrule 1x1", "chainrule", 1, ()),
        ("chainrule 1x1 unfused (hook)", "chainrule", 1, ("--hooked",)),
        ("chainrule 2x1", "chainrule", 2, ()),
        ("chainrule 2x1 MPI_Allreduce", "chainrule", 2, ()),
        ("chainrule 2x1 overlap", "chainrule", 2, ("--overlap",)),
        # the ceiling: two 1x1 runs side by side, no communication, each with its own batch
        ("2 independent 1x1 (no comm)", "pair", 1, ()),
    ]
    plain_mpi = {"CHAINRULE_ALLREDUCE": "mpi"}
    if not args.no_ddp:
        plan += [("torch 1x1", "torch", 1, ()), ("ddp 2x1", "torch", 2, ())]
    for _ in range(args.rounds):
        for name, worker, n, extra in plan:
            env = plain_mpi if "MPI_Allreduce" in name else None
            rounds.setdefault(name, []).append(_run(args, worker, n, *extra, env=env))
    results = {name: _median_round(runs) for name, runs in rounds.items()}
    cores = os.cpu_count() or 1
    for n in args.ranks:
        if n == 2:
            continue
        tag = f"chainrule {n}x1" + (" (oversubscribed)" if n > cores else "")
        results[tag] = _median_round([_run(args, "chainrule", n)])
        if n > cores:  # what --workers sets when oversubscribed: MPICH yields while it waits
            yielding = {"MPIR_CVAR_ENABLE_HEAVY_YIELD": "1"}
            results[f"{tag} + heavy yield"] = _median_round([_run(args, "chainrule", n, env=yielding)])
    sweep = _run(args, "allreduce", 2)["allreduce_s"]
    overlap_ab = _run(args, "overlap-ab", 2)
    per_rank = args.batch if args.weak else args.batch // 2
    block = max(20, 10240 // per_rank)
    efficiency_ab = _run(
        args,
        "efficiency-ab",
        2,
        "--block",
        str(block),
        "--batch-per-rank",
        str(per_rank),
        "--rounds",
        str(args.rounds),
    )
    one, two = results["chainrule 1x1"], results["chainrule 2x1"]
    out: dict[str, Any] = {
        "model": args.cnn or "mlp 784-256-128-10",
        "batch": args.batch,
        "steps": args.steps,
        "results": results,
        "efficiency_2x1": two["samples_per_s"] / (2 * one["samples_per_s"]),
        "efficiency_2x1_overlap": results["chainrule 2x1 overlap"]["samples_per_s"]
        / (2 * one["samples_per_s"]),
        "efficiency_ceiling_no_comm": results["2 independent 1x1 (no comm)"]["samples_per_s"]
        / (2 * one["samples_per_s"]),
        "efficiency_2x1_mpi_allreduce": results["chainrule 2x1 MPI_Allreduce"]["samples_per_s"]
        / (2 * one["samples_per_s"]),
        "allreduce_sweep_s": sweep,
        "overlap_ab_step_ms": overlap_ab,
        "efficiency_ab": efficiency_ab,
        "host_model": _model(
            sweep, one, args.batch, args.batch if args.weak else args.batch // 2, two["buffer_mb"]
        ),
        "weak_scaling": bool(args.weak),
        "load_before": load0,
        "load_after": os.getloadavg(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "blas": _blas(),
    }
    if "ddp 2x1" in results:
        out["chainrule_over_ddp_step"] = two["step_ms"] / results["ddp 2x1"]["step_ms"]
    return out


def table(out: dict[str, Any]) -> str:
    scaling = "weak: batch per rank" if out.get("weak_scaling") else "strong: global batch"
    lines = [
        f"model {out['model']}, {scaling} {out['batch']}, {out['steps']} timed steps, 1 thread per rank, "
        f"load {out['load_before'][0]:.1f} -> {out['load_after'][0]:.1f} on {out['cpu_count']} cores",
        f"{'configuration':34s} {'ms/step':>8s} {'samples/s':>10s} {'allreduce':>10s}  rounds (ms/step)",
    ]
    for name, r in out["results"].items():
        comm = f"{100 * r['comm_share']:.1f}%" if r["ranks"] > 1 and "chainrule" in name else "-"
        lines.append(
            f"{name:34s} {r['step_ms']:8.3f} {r['samples_per_s']:10.0f} {comm:>10s}  {r['step_ms_rounds']}"
        )
    lines.append(
        f"efficiency 2x1 = {out['efficiency_2x1']:.3f} (MPI_Allreduce: {out['efficiency_2x1_mpi_allreduce']:.3f}; "
        f"overlap: {out['efficiency_2x1_overlap']:.3f}); "
        f"chainrule/DDP step = {out.get('chainrule_over_ddp_step', float('nan')):.3f}"
    )
    lines.append(
        f"ceiling with no communication at all (2 independent 1x1 runs at once, the cores' contention "
        f"alone): {out['efficiency_ceiling_no_comm']:.3f}"
    )
    m = out["host_model"]
    two = out["results"]["chainrule 2x1 MPI_Allreduce"]
    ab = out["overlap_ab_step_ms"]
    lines.append(
        f"overlap A/B, MLP, in one 2-rank job (alternating blocks of 20 steps): {ab['off']:.3f} ms/step without, "
        f"{ab['on']:.3f} ms/step with per-layer Iallreduce ({ab['on'] / ab['off']:.3f}x)"
    )
    e = out["efficiency_ab"]
    lines.append(
        f"1x1 / 2x1 / independent pair interleaved in one 2-rank job (blocks of {e['block_steps']} steps, "
        f"{e['batch_per_rank']} rows per rank, median of {e['blocks_each']} blocks each): "
        f"{e['step_ms']['1x1']:.3f} / {e['step_ms']['2x1']:.3f} / {e['step_ms']['pair']:.3f} ms per step; "
        f"efficiency {e['efficiency_2x1']:.3f}, ceiling {e['ceiling_no_comm']:.3f}"
    )
    lines.append(
        f"MPI_Allreduce alone at the buffer size: {m['allreduce_ms_at_buffer']:.3f} ms = "
        f"{100 * m['allreduce_ms_at_buffer'] / two['step_ms']:.1f}% of the 2x1 MPI_Allreduce step (the rest "
        "of its allreduce share is waiting for the slower rank)"
    )
    lines.append(
        f"allreduce (2 ranks, loopback): {m['ms_per_mb']:.3f} ms/MB + {m['latency_us']:.1f} us; "
        f"gradient buffer {m['buffer_mb']:.2f} MB; compute {m['compute_ms_per_rank']:.3f} ms/step "
        f"at {m['per_rank_batch']} samples per rank"
    )
    for net, rows in m["hosts"].items():
        cells = "  ".join(
            f"P={r['hosts']}: {r['step_ms']:.2f} ms ({100 * r['efficiency']:.0f}%)" for r in rows
        )
        lines.append(f"  model, {net:28s} {cells}")
    return "\n".join(lines)


def ab_sweep(args: argparse.Namespace) -> int:
    """The interleaved 1x1 / 2x1 / pair job at each per-rank batch of ``--ab-sweep``: how the
    efficiency and its no-communication ceiling grow with the work per step."""
    rows = []
    for per_rank in args.ab_sweep:
        block = max(20, 10240 // per_rank)
        rows.append(
            _run(
                args,
                "efficiency-ab",
                2,
                "--block",
                str(block),
                "--batch-per-rank",
                str(per_rank),
                "--rounds",
                str(args.rounds),
            )
        )
    model = args.cnn or "mlp 784-256-128-10"
    lines = [
        f"model {model}: 1x1, 2x1 and the independent pair interleaved in one 2-rank job, 1 thread per rank",
        f"{'rows/rank':>9s} {'1x1 ms':>8s} {'2x1 ms':>8s} {'pair ms':>8s} {'efficiency':>10s} {'ceiling':>8s}"
        f"  blocks",
    ]
    for r in rows:
        ms = r["step_ms"]
        lines.append(
            f"{r['batch_per_rank']:9d} {ms['1x1']:8.3f} {ms['2x1']:8.3f} {ms['pair']:8.3f} "
            f"{r['efficiency_2x1']:10.3f} {r['ceiling_no_comm']:8.3f}  {r['blocks_each']} x {r['block_steps']} steps"
        )
    print("\n".join(lines), file=sys.stderr if args.json else sys.stdout)
    if args.json:
        print(json.dumps({"model": model, "ab_sweep": rows, "load": os.getloadavg(), "blas": _blas()}))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--ranks", type=lambda s: [int(v) for v in s.split(",")], default=[2, 4, 8])
    p.add_argument("--cnn", default=None, help="a layer spec for the CNN (needs its words registered)")
    p.add_argument("--weak", action="store_true", help="--batch per rank (global batch N x --batch)")
    p.add_argument("--no-ddp", action="store_true")
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--ab-sweep",
        type=lambda s: [int(v) for v in s.split(",")],
        default=None,
        help="only the interleaved 1x1/2x1/pair job, at each of these rows per rank (e.g. 64,128,256,512)",
    )
    p.add_argument(
        "--worker",
        choices=["chainrule", "torch", "allreduce", "overlap-ab", "efficiency-ab"],
        help=argparse.SUPPRESS,
    )
    p.add_argument("--block", type=int, default=20, help=argparse.SUPPRESS)
    p.add_argument("--batch-per-rank", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--overlap", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--hooked", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        fn = {
            "chainrule": worker_chainrule,
            "torch": worker_torch,
            "allreduce": worker_allreduce,
            "overlap-ab": worker_overlap_ab,
            "efficiency-ab": worker_efficiency_ab,
        }[args.worker]
        result = fn(args)
        if int(os.environ.get("PMI_RANK", "0")) == 0:
            print(json.dumps(result))
        return 0
    if args.ab_sweep:
        return ab_sweep(args)
    out = drive(args)
    print(table(out), file=sys.stderr if args.json else sys.stdout)
    if args.json:
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
