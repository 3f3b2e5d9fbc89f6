"""Side-by-side training benchmark: chainrule against PyTorch autograd, in one run.

Every contestant trains the same network from the same initial weights (chainrule's, drawn by
NumPy's seeded generator; PyTorch's ``nn.Linear`` gets ``Wᵀ``), with the same hyperparameters and
the *same shuffle* each epoch, in the same process, with the same thread limit:

* ``chainrule``: the fast runner on the chosen backend (:mod:`chainrule.accel`);
* ``chainrule_plain``: the textbook runner (:class:`chainrule.train.loop.PlainRunner`) on that backend;
* ``torch_eager``: what a PyTorch user writes: ``nn.Sequential`` + ``CrossEntropyLoss`` +
  ``optim.SGD``, batches gathered by index from a resident tensor;
* ``torch_cuda_graph`` (GPU only): the same autograd step captured once as a CUDA graph
  (forward, backward and ``optimizer.step()`` in the graph, the recipe of PyTorch's CUDA-graph
  notes) and replayed.

Epochs are interleaved (epoch 1 of every contestant, then epoch 2 ...), the order of contestants
rotates from epoch to epoch, and a short cool-down precedes each timed epoch so that BLAS/OpenMP
worker threads still spinning from the previous contestant do not steal its cores. Each timed
epoch is bracketed by device synchronisation. The summary is the median epoch time.

Peak memory is measured per contestant in a *fresh subprocess* (so libraries and caches of one do
not count against another): the worker imports what its contestant needs, loads the same data,
builds the same model, records its RSS and its peak so far (``VmHWM``: imports, data loading
and set-up), resets the kernel's high-water mark (``/proc/self/clear_refs``), trains the same
epochs, and reports the peak resident set size during training (``VmHWM``). On a GPU it also
reports the device allocator's peak.
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from chainrule import __version__
from chainrule.backend import get_backend
from chainrule.backend.threads import limit_threads
from chainrule.errors import ConfigError, MissingDependencyError
from chainrule.io import load_data
from chainrule.nn.builders import mlp
from chainrule.optim import SGD, Momentum
from chainrule.studies.bench_arch import arch_net, torch_twin
from chainrule.train import evaluate, make_runner

try:
    import resource
except ImportError:  # pragma: no cover - not on Windows
    resource = None  # type: ignore[assignment]

__all__ = ["BenchConfig", "run_bench"]

CONTESTANTS = ("chainrule", "chainrule_plain", "torch_eager", "torch_cuda_graph")


@dataclass
class BenchConfig:
    """What ``chainrule bench`` trains and how (see the module docstring)."""

    layers: list[int] = field(default_factory=lambda: [784, 256, 128, 10])
    activation: str = "relu"
    arch: str | None = None  # a layer spec (conv nets): replaces layers/activation
    momentum: float = 0.0  # SGD momentum (0: plain SGD), the same for both sides
    batch_size: int = 128
    epochs: int = 5
    lr: float = 0.1
    device: str = "cpu"
    backend: str | None = None
    threads: int | None = None
    data: str = "mnist"
    data_dir: str | None = None
    seed: int = 0
    plain: bool = True
    torch: bool = True
    memory: bool = True
    memory_epochs: int | None = None  # epochs each memory worker trains (default: epochs)
    cooldown: float = 0.25
    progress: bool = False


# --------------------------------------------------------------------------------------------
# data and models
# --------------------------------------------------------------------------------------------


def _load(cfg: BenchConfig) -> Any:
    data = load_data(cfg.data, cfg.data_dir)
    if cfg.arch is not None:
        out = _chainrule_net(cfg, data.sample_shape).output_shape()
        if out != (data.n_classes,):
            raise ConfigError(
                f"--arch gives outputs of shape {out} but the data has {data.n_classes} classes"
            )
        return data
    if cfg.layers[0] != data.n_features:
        raise ConfigError(f"--layers starts with {cfg.layers[0]} but the data has {data.n_features} features")
    if cfg.layers[-1] != data.n_classes:
        raise ConfigError(f"--layers ends with {cfg.layers[-1]} but the data has {data.n_classes} classes")
    return data


def _chainrule_net(cfg: BenchConfig, sample_shape: tuple[int, ...] = ()) -> Any:
    if cfg.arch is not None:
        return arch_net(cfg.arch, sample_shape, cfg.seed)
    if cfg.activation == "maxout":
        raise ConfigError("bench compares against nn.Linear stacks; maxout has no torch counterpart here")
    return mlp(cfg.layers, cfg.activation, loss="softmax-ce", seed=cfg.seed, dtype=np.float32)


def _initial_weights(cfg: BenchConfig, sample_shape: tuple[int, ...] = ()) -> Any:
    """``(W, b)`` of each seed-style layer's Dense of the seeded chainrule net (host float32 copies);
    with ``--arch``, the seeded network itself (:mod:`chainrule.studies.bench_arch` copies it)."""
    net = _chainrule_net(cfg, sample_shape)
    if cfg.arch is not None:
        return net
    return [(g.head.W.value.copy(), g.head.b.value.copy()) for g in net.groups() if g.head.kind == "dense"]


def _require_torch() -> Any:
    try:
        import torch  # optional: torch extra, only for the PyTorch contestants
    except ImportError:
        raise MissingDependencyError("torch", "the PyTorch side of the benchmark", "torch") from None
    return torch


def _torch_model(
    torch: Any, cfg: BenchConfig, weights: list[tuple[np.ndarray, np.ndarray]], device: str
) -> Any:
    acts = {
        "relu": torch.nn.ReLU,
        "leaky_relu": lambda: torch.nn.LeakyReLU(0.01),
        "sigmoid": torch.nn.Sigmoid,
        "tanh": torch.nn.Tanh,
        "softplus": torch.nn.Softplus,
        "identity": None,
    }
    mods: list[Any] = []
    for i, (W, b) in enumerate(weights):
        lin = torch.nn.Linear(W.shape[0], W.shape[1])
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))
            lin.bias.copy_(torch.from_numpy(b))
        mods.append(lin)
        act = acts[cfg.activation]
        if i < len(weights) - 1 and act is not None:
            mods.append(act())
    return torch.nn.Sequential(*mods).to(device)


# --------------------------------------------------------------------------------------------
# contestants: each trains one epoch on a given order and can report test accuracy
# --------------------------------------------------------------------------------------------


class _Chainrule:
    def __init__(self, cfg: BenchConfig, data: Any, *, fast: bool) -> None:
        self.backend = get_backend(cfg.backend, cfg.device)
        self.net = _chainrule_net(cfg, data.sample_shape).to(self.backend, "float32")
        opt = Momentum(cfg.lr, cfg.momentum) if cfg.momentum else SGD(cfg.lr)
        self.runner = make_runner(self.net, opt, 0.0, fast=fast)
        if fast and self.runner.name == "plain" and cfg.arch is None:
            raise ConfigError(f"no fast runner covers this network on {self.backend}")
        self.x = self.backend.asarray(data.x_train, dtype="float32")
        self.y = self.backend.asarray(data.y_train)
        self.bs = cfg.batch_size

    def run_epoch(self, order: np.ndarray) -> tuple[float, float]:
        out = self.runner.run_epoch(self.x, self.y, order, self.bs, _noop)
        self.backend.synchronize()
        return out

    def sync(self) -> None:
        self.backend.synchronize()

    def test_accuracy(self, x: np.ndarray, y: np.ndarray) -> float:
        return float(
            evaluate(self.net, self.backend.asarray(x, dtype="float32"), self.backend.asarray(y))["accuracy"]
        )


class _TorchEager:
    """``nn.Sequential`` + ``CrossEntropyLoss`` + ``optim.SGD``; loss and hits summed on the device."""

    def __init__(self, cfg: BenchConfig, data: Any, weights: list[tuple[np.ndarray, np.ndarray]]) -> None:
        torch = self.torch = _require_torch()
        self.device = "cuda" if cfg.device.startswith("cuda") else "cpu"
        if cfg.arch is not None:
            self.model = torch_twin(torch, weights).to(self.device)
        else:
            self.model = _torch_model(torch, cfg, weights, self.device)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=cfg.lr, momentum=cfg.momentum)
        self.loss_fn = torch.nn.CrossEntropyLoss()
        self.shape = (-1, *weights.input_shape) if cfg.arch is not None else (-1, data.n_features)
        x_train = np.ascontiguousarray(data.x_train, dtype=np.float32).reshape(self.shape)
        self.x = torch.from_numpy(x_train).to(self.device)
        self.y = torch.from_numpy(np.asarray(data.y_train, dtype=np.int64)).to(self.device)
        self.bs = cfg.batch_size

    def sync(self) -> None:
        if self.device == "cuda":
            self.torch.cuda.synchronize()

    def run_epoch(self, order: np.ndarray) -> tuple[float, float]:
        torch, n, bs = self.torch, len(order), self.bs
        perm = torch.from_numpy(np.asarray(order, dtype=np.int64)).to(self.device)
        total = torch.zeros((), dtype=torch.float64, device=self.device)
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        for start in range(0, n, bs):
            idx = perm[start : start + bs]
            xb, yb = self.x[idx], self.y[idx]
            out = self.model(xb)
            loss = self.loss_fn(out, yb)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            total += loss.detach() * len(idx)
            correct += (out.argmax(1) == yb).sum()
        self.sync()
        return float(total) / n, float(correct) / n

    def test_accuracy(self, x: np.ndarray, y: np.ndarray) -> float:
        torch = self.torch
        with torch.no_grad():
            xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32).reshape(self.shape)).to(
                self.device
            )
            pred = self.model(xt).argmax(1).cpu().numpy()
        return float(np.mean(pred == np.asarray(y)))


class _TorchCudaGraph(_TorchEager):
    """The eager step captured as a CUDA graph per batch size (full batch, final partial batch).

    The gather reads a static index tensor, so each step is one device-to-device copy of the
    batch's indices and one ``graph.replay()``; loss and hits accumulate inside the graph.
    """

    def __init__(self, cfg: BenchConfig, data: Any, weights: list[tuple[np.ndarray, np.ndarray]]) -> None:
        super().__init__(cfg, data, weights)
        torch = self.torch
        self.total = torch.zeros((), dtype=torch.float64, device=self.device)
        self.correct = torch.zeros((), dtype=torch.int64, device=self.device)
        self.graphs: dict[int, tuple[Any, Any]] = {}

    def _eager_step(self, idx: Any) -> Any:
        xb, yb = self.x.index_select(0, idx), self.y.index_select(0, idx)
        out = self.model(xb)
        loss = self.loss_fn(out, yb)
        loss.backward()
        self.opt.step()
        return out, yb, loss

    def _capture(self, nb: int) -> tuple[Any, Any]:
        torch = self.torch
        idx = torch.arange(nb, device=self.device)
        params = list(self.model.parameters())
        saved = [p.detach().clone() for p in params]
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm-up on a side stream, as the CUDA-graph notes ask
            for _ in range(3):
                self.opt.zero_grad(set_to_none=True)
                self._eager_step(idx)
        torch.cuda.current_stream().wait_stream(side)
        with torch.no_grad():  # the warm-up trained: put the weights back
            for p, s in zip(params, saved, strict=True):
                p.copy_(s)
        graph = torch.cuda.CUDAGraph()
        self.opt.zero_grad(set_to_none=True)
        with torch.cuda.graph(graph):
            out, yb, loss = self._eager_step(idx)
            self.total.add_(loss.detach() * nb)
            self.correct.add_((out.argmax(1) == yb).sum())
        return graph, idx

    def run_epoch(self, order: np.ndarray) -> tuple[float, float]:
        torch, n, bs = self.torch, len(order), self.bs
        perm = torch.from_numpy(np.asarray(order, dtype=np.int64)).to(self.device)
        for nb in {min(bs, n), n % bs or min(bs, n)}:
            if nb not in self.graphs:
                self.graphs[nb] = self._capture(nb)
        self.total.zero_()
        self.correct.zero_()
        for start in range(0, n, bs):
            stop = min(start + bs, n)
            graph, idx = self.graphs[stop - start]
            idx.copy_(perm[start:stop])
            graph.replay()
        self.sync()
        return float(self.total) / n, float(self.correct) / n


def _noop() -> None:
    pass


def _make(name: str, cfg: BenchConfig, data: Any, weights: list[tuple[np.ndarray, np.ndarray]]) -> Any:
    if name == "chainrule":
        return _Chainrule(cfg, data, fast=True)
    if name == "chainrule_plain":
        return _Chainrule(cfg, data, fast=False)
    if name == "torch_eager":
        return _TorchEager(cfg, data, weights)
    if name == "torch_cuda_graph":
        return _TorchCudaGraph(cfg, data, weights)
    raise ConfigError(f"unknown contestant {name!r}")


def _contestants(cfg: BenchConfig) -> list[str]:
    names = ["chainrule"]
    if cfg.plain and cfg.arch is None:  # a spec network trains on the plain runner already
        names.append("chainrule_plain")
    if cfg.torch:
        names.append("torch_eager")
        if cfg.device.startswith("cuda"):
            names.append("torch_cuda_graph")
    return names


# --------------------------------------------------------------------------------------------
# memory: one fresh subprocess per contestant
# --------------------------------------------------------------------------------------------


def _status_kb(key: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    """Reset the kernel's resident-set high-water mark (Linux ≥ 4.0: ``echo 5 > clear_refs``)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _maxrss_mb() -> float:
    if resource is None:  # pragma: no cover - not on Windows
        return float("nan")
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / (1024 * 1024) if sys.platform == "darwin" else r / 1024


def _memory_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Train one contestant in this (fresh) process and report its memory."""
    name = spec.pop("contestant")
    cfg = BenchConfig(**spec)
    with limit_threads(cfg.threads):
        data = _load(cfg)
        weights = _initial_weights(cfg, data.sample_shape)
        c = _make(name, cfg, data, weights)
        gpu = cfg.device.startswith("cuda")
        torch = sys.modules.get("torch")
        if gpu and torch is not None:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        c.sync()
        rss_before = _status_kb("VmRSS")
        # peak of imports, loading and building: VmHWM belongs to this process's own address space
        # (ru_maxrss would include the parent's RSS at fork time)
        hwm_setup = _status_kb("VmHWM")
        setup_peak = hwm_setup / 1024 if hwm_setup is not None else _maxrss_mb()
        reset = _reset_peak_rss()
        rng = np.random.default_rng(cfg.seed)
        for _ in range(cfg.memory_epochs or cfg.epochs):
            c.run_epoch(rng.permutation(data.n_train))
        hwm = _status_kb("VmHWM") if reset else None
    out: dict[str, Any] = {
        "peak_rss_training_mb": None if hwm is None else round(hwm / 1024, 1),
        "rss_before_training_mb": None if rss_before is None else round(rss_before / 1024, 1),
        "peak_rss_setup_mb": round(setup_peak, 1),
        "torch_imported": "torch" in sys.modules,
    }
    if gpu:
        if torch is not None and torch.cuda.is_initialized():
            out["device_peak_allocated_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        if "cupy" in sys.modules:
            pool = sys.modules["cupy"].get_default_memory_pool()
            out["device_pool_total_mb"] = round(pool.total_bytes() / 2**20, 1)
    return out


def _measure_memory(name: str, cfg: BenchConfig) -> dict[str, Any]:
    spec = asdict(cfg)
    spec.update(contestant=name, progress=False, memory=False)
    if cfg.memory_epochs:
        spec["epochs"] = cfg.memory_epochs
    cmd = [sys.executable, "-m", "chainrule.studies.bench", "--memory-worker", json.dumps(spec)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_bench_env(), check=False)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"error": f"memory worker failed ({proc.returncode}): {tail[0]}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _bench_env() -> dict[str, str]:
    """The environment for worker processes: OpenBLAS tuning variables removed (their
    defaults are what is measured)."""
    env = dict(os.environ)
    for key in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        env.pop(key, None)
    return env


# --------------------------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------------------------


def _environment(cfg: BenchConfig) -> dict[str, Any]:
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": platform.platform(),
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
    }
    try:
        from threadpoolctl import threadpool_info  # optional: cli extra, BLAS details only

        info["blas"] = [
            {
                k: d.get(k)
                for k in (
                    "internal_api",
                    "version",
                    "architecture",
                    "threading_layer",
                    "num_threads",
                    "prefix",
                )
            }
            for d in threadpool_info()
        ]
    except ImportError:  # pragma: no cover
        info["blas"] = None
    torch = sys.modules.get("torch")
    if torch is not None:
        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        if cfg.device.startswith("cuda") and torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name()
    if "cupy" in sys.modules:
        cupy = sys.modules["cupy"]
        info["cupy"] = cupy.__version__
        if "gpu" not in info:
            props = cupy.cuda.runtime.getDeviceProperties(0)
            info["gpu"] = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    info["chainrule"] = __version__
    return info


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else round(a / b, 4)


def run_bench(cfg: BenchConfig, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the benchmark described by ``cfg`` and return the result as a JSON-safe dict."""
    if cfg.epochs < 1 or cfg.batch_size < 1 or not (cfg.lr > 0 and math.isfinite(cfg.lr)):
        raise ConfigError("bench needs epochs ≥ 1, batch size ≥ 1 and a positive learning rate")
    say = log or (lambda _msg: None)
    for key in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):  # only read at load time; recorded
        if key in os.environ:
            say(f"note: {key} is set in the environment; it changes what OpenBLAS measures")
    names = _contestants(cfg)
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    with limit_threads(cfg.threads):
        data = _load(cfg)
        weights = _initial_weights(cfg, data.sample_shape)
        runs = {name: _make(name, cfg, data, weights) for name in names}
        chosen = runs["chainrule"]
        seconds: dict[str, list[float]] = {name: [] for name in names}
        losses: dict[str, list[float]] = {name: [] for name in names}
        accs: dict[str, list[float]] = {name: [] for name in names}
        rng = np.random.default_rng(cfg.seed)
        bar = _bar(cfg.epochs * len(names), cfg.progress)
        orders = []
        for epoch in range(cfg.epochs):
            order = rng.permutation(data.n_train)
            orders.append(order)
            k = epoch % len(names)
            for name in names[k:] + names[:k]:  # rotate who goes first
                run = runs[name]
                run.sync()
                time.sleep(cfg.cooldown)
                t0 = time.perf_counter()
                loss, acc = run.run_epoch(order)
                seconds[name].append(time.perf_counter() - t0)
                losses[name].append(loss)
                accs[name].append(acc)
                if bar is not None:
                    bar.set_postfix_str(f"{name} {seconds[name][-1]:.3f}s")
                    bar.update(1)
        if bar is not None:
            bar.close()
        test_acc = (
            {name: runs[name].test_accuracy(data.x_test, data.y_test) for name in names}
            if data.n_test
            else {}
        )
        cpu_ref = None
        if cfg.device.startswith("cuda"):
            cpu_ref = _cpu_reference(cfg, data, orders[0], losses["chainrule"][0])
        env = _environment(cfg)
    load_after = os.getloadavg() if hasattr(os, "getloadavg") else None
    del runs
    memory: dict[str, Any] = {}
    if cfg.memory:
        for name in names:
            say(f"measuring peak memory of {name} in a subprocess")
            memory[name] = _measure_memory(name, cfg)
    med = {name: round(statistics.median(s), 4) for name, s in seconds.items()}
    ratios = {}
    for other in ("torch_eager", "torch_cuda_graph", "chainrule_plain"):
        if other in med:
            ratios[f"chainrule/{other}"] = _ratio(med["chainrule"], med[other])
    if "chainrule_plain" in med and "torch_eager" in med:
        ratios["chainrule_plain/torch_eager"] = _ratio(med["chainrule_plain"], med["torch_eager"])
    result: dict[str, Any] = {
        "benchmark": "chainrule bench",
        "config": {k: v for k, v in asdict(cfg).items() if k not in ("progress",)},
        "device": cfg.device,
        "backend": str(chosen.backend),
        "runner": chosen.runner.name,
        "dataset": {"name": data.name, "n_train": data.n_train, "n_test": data.n_test},
        "steps_per_epoch": math.ceil(data.n_train / cfg.batch_size),
        "contestants": names,
        "epoch_seconds": {name: [round(s, 4) for s in secs] for name, secs in seconds.items()},
        "median_epoch_seconds": med,
        "ratios": ratios,
        "train_loss": {name: [round(v, 6) for v in vals] for name, vals in losses.items()},
        "train_accuracy": {name: [round(v, 5) for v in vals] for name, vals in accs.items()},
        "test_accuracy": {name: round(v, 5) for name, v in test_acc.items()},
    }
    if "torch_eager" in test_acc:
        result["test_accuracy_gap_points"] = round(100 * (test_acc["chainrule"] - test_acc["torch_eager"]), 3)
    if cpu_ref is not None:
        result["cpu_reference"] = cpu_ref
    if memory:
        result["peak_memory"] = memory
        a = memory.get("chainrule", {}).get("peak_rss_training_mb")
        b = memory.get("torch_eager", {}).get("peak_rss_training_mb")
        result["peak_memory_ratio_chainrule/torch_eager"] = _ratio(a, b)
    result["loadavg"] = {"before": load_before, "after": load_after}
    result["environment"] = env
    return result


def _cpu_reference(cfg: BenchConfig, data: Any, order: np.ndarray, gpu_loss: float) -> dict[str, Any]:
    """One epoch of the NumPy fast runner on the CPU with the first epoch's order: its mean loss
    against the GPU run's (same seed, same weights, same shuffle)."""
    cpu_cfg = BenchConfig(**{**asdict(cfg), "device": "cpu", "backend": "numpy"})
    run = _Chainrule(cpu_cfg, data, fast=True)
    loss, _ = run.run_epoch(order)
    return {"loss_epoch1_cpu": loss, "loss_epoch1_gpu": gpu_loss, "abs_diff": abs(loss - gpu_loss)}


def _bar(total: int, enabled: bool) -> Any:
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm  # optional: cli extra, a progress bar only
    except ImportError:
        return None
    return tqdm(total=total, desc="bench", unit="epoch", file=sys.stderr, leave=False, dynamic_ncols=True)


def _worker_main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "--memory-worker":
        print("usage: python -m chainrule.studies.bench --memory-worker JSON", file=sys.stderr)
        return 2
    print(json.dumps(_memory_worker(json.loads(argv[1]))))
    return 0


if __name__ == "__main__":
    sys.exit(_worker_main(sys.argv[1:]))
