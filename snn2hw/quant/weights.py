"""Dense weight preparation: the weights a chip actually stores for a Dense node.

This is the definition non-backend code uses (the resource mapper counts the synapses that
survive it). The integer backends keep their own deliberate copies, since each is an
independent implementation of docs/qgraph.md; ``tests/test_shared_semantics.py`` runs every
copy on the same random weights and requires equal results.

May import: numpy only.
"""

from __future__ import annotations

import numpy as np


def effective_dense_weight(weight: np.ndarray, num_weight_bits: int) -> np.ndarray:
    """W' of docs/qgraph.md "Dense weight preparation", as int64 with ``weight``'s shape.

    1. sign mode: excitatory if min(W) >= 0 (all-zero included), inhibitory if max(W) <= 0,
       else mixed;
    2. clip: mixed [-256, 255], excitatory [0, 255], inhibitory [-255, 0];
    3. drop the low bits: k = 8 - num_weight_bits (+1 when mixed: the sign takes a bit);
       W' = (W >> k) << k (floor), and for inhibitory matrices the magnitude is truncated:
       W' = -(((-W) >> k) << k). Mixed [7, -7] with 8 bits becomes [6, -8].
    """
    w = np.asarray(weight, dtype=np.int64)
    k = 8 - int(num_weight_bits)
    if w.size == 0 or w.min() >= 0:
        return (np.clip(w, 0, 255) >> k) << k
    if w.max() <= 0:
        return -(((-np.clip(w, -255, 0)) >> k) << k)
    return (np.clip(w, -256, 255) >> (k + 1)) << (k + 1)
