"""Training: the BPTT loop, evaluation, safe checkpoints, validated TOML configs and
quantization-aware fine-tuning (QAT).

Evaluation protocol: a validation split carved from the training data selects ``best.pt``;
the test split is read once, after training, for the reported checkpoint.

Modules: ``config`` (TOML schema), ``checkpoint`` (safe files), ``runtime`` (device, seeding,
dataset, encoder), ``loop`` (the one training epoch), ``evaluation`` (val/test metrics),
``train`` (``snn2hw train``), ``qgrid`` (PTQ of a model in memory, as export does it) and
``qat`` (``snn2hw finetune``).

May import: ``nn``, ``data``, ``nir`` and ``quant`` (QAT quantizes in memory with the same
functions export uses), ``common``. Never a backend, ``pipeline``, ``chip``, ``reporting``,
``exporters`` or ``cli`` (``tests/training/test_qat.py`` checks this).
"""
