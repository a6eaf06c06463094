"""The matrix-level engine: tensors as nodes, reverse mode with matrix rules.

``tensor_op`` holds the operation record and its registry; ``core_ops`` and
``nn_ops`` fill the registry (arithmetic, matmul and activations; softmax,
reductions along an axis, convolution and pooling).  ``exprs`` holds the
matrix expressions and their printers, ``tgraph`` the graph of named tensors,
``reverse`` the matrix reverse mode and ``mcheck`` the checks that scale.
"""
import importlib
import importlib.util

from derive.engine import core_ops

# the nn operations (softmax along an axis, conv, pooling), where present
if importlib.util.find_spec(f"{__name__}.nn_ops") is not None:
    importlib.import_module(f"{__name__}.nn_ops")

core_ops.register_fallbacks()
