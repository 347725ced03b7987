"""The output decision: how a network's output spikes become a class.

One definition for every non-backend caller (training, export, simulate, compare, energy,
reports). The integer backends keep their own deliberate copies (they are independent
implementations of docs/qgraph.md); ``tests/test_shared_semantics.py`` requires all copies to
agree on the same random inputs.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np

Array = TypeVar("Array")


def spike_counts(spikes: Array) -> Array:
    """Output spikes ``[T, B, ...]`` (numpy or torch) -> counts per sample ``[B, classes]``."""
    counts = spikes.sum(0)
    return counts.reshape(counts.shape[0], -1)


def decide(counts: Array) -> Array:
    """Class per sample ``[B]`` from spike counts ``[B, classes]``: the class with the most
    output spikes; ties go to the lowest index (numpy's and torch's argmax both return the
    first maximum)."""
    return counts.reshape(counts.shape[0], -1).argmax(1)


def classify(spikes: Array) -> Array:
    """Output spikes ``[T, B, ...]`` -> class per sample ``[B]`` (:func:`decide` of the counts)."""
    return decide(spike_counts(spikes))


def accuracy(predictions: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of samples whose prediction equals the label (0.0 for no samples)."""
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    return float((predictions == labels).mean()) if len(labels) else 0.0
