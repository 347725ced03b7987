"""Training: the BPTT loop, evaluation, safe checkpoints, validated TOML configs and
quantization-aware fine-tuning (QAT).

May import: ``nn``, ``data``, ``nir`` and ``quant`` (QAT quantizes in memory with the same
functions export uses), ``common``. Never a backend, ``pipeline`` or ``cli``.
"""
