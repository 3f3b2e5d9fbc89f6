"""Fast epoch runners: the same arithmetic as the plain step, over reused buffers and fused kernels.

One ops table per backend (NumPy, torch with CUDA graphs, CuPy kernels), keyed by the layer kinds
of the registry. A network with a layer that has no fast kernel trains on the plain path.
"""
