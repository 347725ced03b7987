"""A neuron layer in threshold-normalized float units, measured on calibration data.

Step two of post-training quantization (:mod:`snn2hw.quant.ptq`), still all float: for a
neuron ``L`` with per-step parameters from :mod:`snn2hw.nir.discretize`, the threshold
span ``θ' = v_threshold - v_reset`` becomes 1 and the reset 0, so

* every path's weights become ``Mn[i, :] = in_gain_i · W[i, :] / θ'_i`` (input weights
  in integer input units, see :class:`Calibration`);
* the membrane bias collects the leak/reset offset ``v_bias - (1 - beta) v_reset`` and
  the synaptic (Affine/Conv) biases ``g·b`` (steady state ``g·b / (1 - alpha)`` for CUBA
  layers, noted as an approximation);
* the summed normalized synaptic current on the calibration data gives the largest
  ``|u|`` (:func:`max_u_norm`), which bounds the integer threshold against u wrap.

Dependencies: numpy, torch, :mod:`snn2hw.common`, :mod:`snn2hw.nir.discretize`,
:mod:`snn2hw.quant.nir_paths`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from snn2hw.common.errors import GraphError, QuantizationError
from snn2hw.nir.discretize import DiscreteNeuron
from snn2hw.quant.nir_paths import (
    PathPlan,
    Structure,
    apply_structural,
    apply_weighted,
    plan_path,
    weighted_out_shape,
)

__all__ = ["Calibration", "NormalizedLayer", "max_u_norm", "normalize_layer", "threshold_span"]


def threshold_span(neuron: str, dn: DiscreteNeuron) -> np.ndarray:
    """``θ' = v_threshold - v_reset``, which must be positive (Loihi resets to 0)."""
    theta = dn.vth - dn.v_reset
    if np.any(theta <= 0):
        raise QuantizationError(
            f"node '{neuron}': v_threshold must exceed v_reset (got min "
            f"{float(theta.min()):.4g}); Loihi resets to 0 below a positive threshold"
        )
    return theta


@dataclass
class Calibration:
    """Float calibration records; the input's are read in integer input units."""

    records: dict[str, torch.Tensor]
    input_name: str
    input_scale: float

    def values(self, src: str) -> torch.Tensor:
        """What source ``src`` emitted on the calibration data, ``[T, B, ...]`` float64."""
        if src not in self.records:
            raise GraphError(f"calibration records lack node '{src}'")
        x = self.records[src].detach().to(torch.float64)
        return x / self.input_scale if src == self.input_name else x

    def weight_factor(self, src: str) -> float:
        """Factor on weights from ``src``: input weights act on integer input units."""
        return self.input_scale if src == self.input_name else 1.0


@dataclass
class NormalizedLayer:
    """A layer's paths in threshold-normalized float units (threshold 1, reset 0)."""

    plans: list[PathPlan]
    weights: list[np.ndarray]  # per path: Mn = in_gain · W / θ' (per output row)
    row_gain: np.ndarray  # in_gain per output row
    row_theta: np.ndarray  # θ' = v_threshold - v_reset per output row
    v_bias: np.ndarray  # membrane bias (float units), per neuron
    current: torch.Tensor  # normalized synaptic input on calibration data [T, B, *shape]
    notes: list[str]


def normalize_layer(
    struct: Structure,
    neuron: str,
    dn: DiscreteNeuron,
    theta: np.ndarray,
    calib: Calibration,
) -> NormalizedLayer:
    """Plan every path into ``neuron`` and bring it to threshold-normalized units:
    weights, membrane bias (leak/reset offset plus synaptic biases) and the summed
    synaptic current on the calibration data."""
    shape = tuple(dn.shape)
    paths = struct.paths(neuron)
    if not paths:
        raise GraphError(f"neuron '{neuron}' has no input")
    plans = [plan_path(struct, p, shape) for p in paths]
    beta = float(dn.beta.flat[0])
    g_row = _per_channel(dn.in_gain, shape, "input gain", neuron)
    th_row = _per_channel(theta, shape, "threshold", neuron)
    v_bias = np.broadcast_to(dn.v_bias - (1.0 - beta) * dn.v_reset, shape).astype(np.float64)
    notes: list[str] = []
    weights: list[np.ndarray] = []
    current = None
    for plan in plans:
        mn = _normalized_weights(plan, neuron, shape, g_row, th_row, calib)
        weights.append(mn)
        if plan.bias is not None:
            v_bias = _add_synaptic_bias(v_bias, plan, dn, notes)
        c = _path_current(plan, mn, shape, calib)
        current = c if current is None else current + c
    return NormalizedLayer(plans, weights, g_row, th_row, v_bias, current, notes)


def _per_channel(arr: np.ndarray, shape: tuple[int, ...], what: str, node: str) -> np.ndarray:
    """Per-output-row values: per neuron for flat layers, per channel for (C, H, W)."""
    a = np.broadcast_to(arr, shape)
    if len(shape) == 1:
        return np.asarray(a, dtype=np.float64)
    flat = a.reshape(shape[0], -1)
    if not np.allclose(flat, flat[:, :1], rtol=1e-9, atol=0):
        raise QuantizationError(
            f"node '{node}': {what} varies within a channel; conv layers need it per channel"
        )
    return flat[:, 0].astype(np.float64)


def _normalized_weights(
    plan: PathPlan,
    neuron: str,
    shape: tuple[int, ...],
    g_row: np.ndarray,
    th_row: np.ndarray,
    calib: Calibration,
) -> np.ndarray:
    """``Mn[i, :] = in_gain_i · W[i, :] / θ'_i`` (W in integer input units for the input)."""
    w = plan.weighted["weight"]
    if plan.source == calib.input_name:
        w = w * calib.input_scale  # weights act on integer input units
    out_shape = weighted_out_shape(plan.weighted)
    if int(np.prod(out_shape)) != int(np.prod(shape)):
        raise GraphError(
            f"path {' -> '.join(plan.names)} produces {list(out_shape)} values but "
            f"'{neuron}' has shape {list(shape)}"
        )
    rowscale = (g_row / th_row).reshape(-1, *([1] * (w.ndim - 1)))
    mn = w * rowscale
    if not np.all(np.isfinite(mn)):
        raise GraphError(f"path {' -> '.join(plan.names)}: NaN or Inf weights")
    return mn


def _add_synaptic_bias(
    v_bias: np.ndarray, plan: PathPlan, dn: DiscreteNeuron, notes: list[str]
) -> np.ndarray:
    """Add a path's Affine/Conv bias (times the input gain) to the membrane bias: exact
    for alpha = 0, the steady state ``g·b / (1 - alpha)`` for CUBA layers (noted)."""
    shape = tuple(dn.shape)
    alpha = float(dn.alpha.flat[0])
    b = plan.bias
    if not np.all(np.isfinite(b)):
        raise GraphError(f"node '{plan.names[-1]}': NaN or Inf in its bias")
    b_full = np.broadcast_to(
        b.reshape(-1, *([1] * (len(shape) - 1))) if len(shape) > 1 else b, shape
    )
    g_full = np.broadcast_to(dn.in_gain, shape)
    if alpha == 0.0:
        return v_bias + g_full * b_full
    if np.any(b_full != 0):
        notes.append(
            f"synaptic bias of '{plan.names[-1]}' into a CUBA layer mapped to its "
            "steady-state membrane bias (transient differs)"
        )
    return v_bias + g_full * b_full / max(1.0 - alpha, 1e-9)


def _path_current(
    plan: PathPlan, mn: np.ndarray, shape: tuple[int, ...], calib: Calibration
) -> torch.Tensor:
    """The normalized current one path delivers on the calibration data."""
    x = apply_structural(calib.values(plan.source), plan.ops)
    return apply_weighted(x, plan.weighted, mn).reshape(x.shape[0], x.shape[1], *shape)


def max_u_norm(current: torch.Tensor, alpha: float) -> float:
    """Largest ``|u|`` of ``u = alpha u + current`` over the calibration data."""
    u = torch.zeros_like(current[0])
    u_max = 0.0
    for t in range(current.shape[0]):
        u = alpha * u + current[t]
        u_max = max(u_max, float(u.abs().max()))
    return u_max
