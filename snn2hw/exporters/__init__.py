"""Writers of files for other tools (integer and float ONNX). They emit; they do not run.

May import: ``quant``, ``nir``, ``nn``, ``common``. Never a backend.
"""
