"""Dense weight preparation: the weights a chip actually stores for a Dense node.

This is the definition non-backend code uses (the resource mapper counts the synapses that
survive it). The integer backends keep their own deliberate copies, since each is an
independent implementation of docs/qgraph.md; ``tests/test_shared_semantics.py`` runs every
copy on the same random weights and requires equal results.

May import: numpy and :mod:`snn2hw.quant.formats`.
"""

from __future__ import annotations

import numpy as np

from snn2hw.quant.formats import LOIHI_FORMATS, NumberFormats


def effective_dense_weight(
    weight: np.ndarray, num_weight_bits: int, formats: NumberFormats = LOIHI_FORMATS
) -> np.ndarray:
    """W' of docs/qgraph.md "Dense weight preparation", as int64 with ``weight``'s shape,
    in the graph's number formats (Loihi's values in brackets).

    1. sign mode: excitatory if min(W) >= 0 (all-zero included), inhibitory if max(W) <= 0,
       else mixed;
    2. clip to ``weight_range_mixed`` [-256, 255], ``weight_range_excitatory`` [0, 255],
       ``weight_range_inhibitory`` [-255, 0];
    3. drop the low bits: k = weight_mantissa_bits (8) - num_weight_bits, +1 when mixed and
       ``mixed_sign_lsb_loss`` (Loihi: the sign takes a bit); W' = (W >> k) << k (floor),
       and for inhibitory matrices the magnitude is truncated: W' = -(((-W) >> k) << k).
       Loihi: mixed [7, -7] with 8 bits becomes [6, -8].
    """
    f = formats
    w = np.asarray(weight, dtype=np.int64)
    k = f.weight_mantissa_bits - int(num_weight_bits)
    if w.size == 0 or w.min() >= 0:
        return (np.clip(w, *f.weight_range_excitatory) >> k) << k
    if w.max() <= 0:
        return -(((-np.clip(w, *f.weight_range_inhibitory)) >> k) << k)
    k += int(f.mixed_sign_lsb_loss)
    return (np.clip(w, *f.weight_range_mixed) >> k) << k
