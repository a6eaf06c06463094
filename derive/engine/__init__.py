"""The matrix-level engine: tensors as nodes, reverse mode with matrix rules.

``tensor_op`` holds the operation record and its registry; ``core_ops`` and
``nn_ops`` fill the registry (arithmetic, matmul and activations; softmax,
reductions along an axis, convolution and pooling).
"""
