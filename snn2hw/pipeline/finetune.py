"""``snn2hw finetune``: quantization-aware fine-tuning with its integer accuracy measured.

Training (:func:`snn2hw.training.qat.finetune`) may not export or run a backend, so the PTQ
and QAT accuracies it reports are measured here: each checkpoint is exported for the target
and run in torch integer mode on the test split.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from snn2hw.training.qat import finetune as _train_finetune


def integer_accuracy(ckpt_path: Path, target: str, samples: int | None = None,
                     trust_pickle: bool = False) -> float:
    """Export ``ckpt_path`` for ``target`` and measure torch-int accuracy on the test split
    (the PTQ and QAT figures of :func:`finetune`)."""
    import tempfile

    from snn2hw.common.readout import accuracy
    from snn2hw.pipeline.export import export
    from snn2hw.pipeline.simulate import graph_samples, predictions, run_backend
    from snn2hw.quant.qgraph import QGraph

    with tempfile.TemporaryDirectory() as tmp:
        g = QGraph.load(export(ckpt_path, target, tmp, trust_pickle=trust_pickle).qgraph_path)
    smp = graph_samples(g, samples)
    run = run_backend("torch-int", g, smp.ints)
    if smp.labels is None:
        return float("nan")
    return accuracy(predictions(g, run.spikes), smp.labels)


def finetune(checkpoint: str | Path, target: str, out_path: str | Path,
             **kwargs: Any) -> Any:
    """:func:`snn2hw.training.qat.finetune` with PTQ/QAT accuracy from :func:`integer_accuracy`
    (keyword arguments as there)."""
    from snn2hw.chip.targets import load_target
    from snn2hw.quant.bounds import limits_from_formats

    tgt = load_target(target)  # the grid QAT trains on is the one export quantizes to
    trust = bool(kwargs.get("trust_pickle", False))
    kwargs.setdefault("integer_accuracy",
                      functools.partial(integer_accuracy, trust_pickle=trust))
    kwargs.setdefault("formats", tgt.number_formats)
    kwargs.setdefault("chip_limits", limits_from_formats(tgt.raw.get("formats", {})))
    return _train_finetune(checkpoint, target, out_path, **kwargs)
