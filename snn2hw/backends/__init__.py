"""Integer backends that execute a quantized graph (docs/qgraph.md).

``base`` holds the contract (the ``Backend`` protocol, ``SimResult``), ``registry`` the one
list of backends (``torch-int``, ``event``, ``lava``, ``onnx``). The backends proper
(``torch_int`` + ``torch_int_ops``, ``event`` + ``event_kernels``, ``lava`` +
``lava_lowering``) are deliberately independent implementations: each may import ``base``,
``snn2hw.common``, ``snn2hw.quant``, ``snn2hw.compat`` and numpy/torch/numba/scipy/lava,
never another backend nor pipeline, chip, training, reporting or cli
(tests/backends/test_registry.py checks it). Nothing is imported here, so importing one
backend loads no other.
"""
