"""Fast epoch runners: the same arithmetic as the plain step, over reused buffers and fused kernels.

One ops table per backend (NumPy, torch with CUDA graphs, CuPy kernels), keyed by the layer kinds
of the registry. A network with a layer that has no fast kernel trains on the plain path.

Modules, bottom up: :mod:`.plan` (the blocks and the tables' types), :mod:`.cblas` (one-GEMM
``W += αxᵀδ``), :mod:`.loss_kernels` and :mod:`.update_kernels` (shared by the backends),
:mod:`.numpy_ops`, :mod:`.torch_ops`, :mod:`.cupy_kernels` + :mod:`.cupy_ops` (each backend's
primitives and tables), :mod:`.runner` (the step, written once), :mod:`.torch_graph` (CUDA
graphs) and :mod:`.dispatch` (:func:`make_fast_runner`).
"""

from chainrule.accel.dispatch import make_fast_runner
from chainrule.accel.numpy_ops import NumpyOps
from chainrule.accel.plan import Block, plan_blocks, plan_step
from chainrule.accel.runner import FastRunner
from chainrule.backend.threads import limit_threads

__all__ = ["Block", "FastRunner", "NumpyOps", "limit_threads", "make_fast_runner", "plan_blocks", "plan_step"]
