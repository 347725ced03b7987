"""Stateless layers over time-major ``[T, B, ...]`` tensors.

Linear, convolution, pooling, flatten and normalization act on each time step alike, so
they fold time into the batch (one large matmul/conv instead of T small ones).
:class:`TimeDropout` draws one mask per sample and holds it across time (Lee et al. 2020).
:class:`TemporalNorm` is BP-SRM's temporal channel normalization: per-channel statistics
over time and batch; at export it folds into the preceding Linear/Conv weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from snn2hw.nn.sparse import SparseInput, sparse_eligible, sparse_linear


def _seq(fn, x: torch.Tensor) -> torch.Tensor:
    t, b = x.shape[:2]
    y = fn(x.reshape(t * b, *x.shape[2:]))
    return y.reshape(t, b, *y.shape[1:])


class SeqLinear(nn.Linear):
    """``nn.Linear`` applied to every step of ``[T, B, in]``. On CPU, a sparse input (spikes
    at a low firing rate) takes the products over its active inputs only
    (:mod:`snn2hw.nn.sparse`, same math); ``sparse_inputs = False`` forces the dense path."""

    sparse_inputs: bool = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        if self.sparse_inputs and sparse_eligible(x, self.weight):
            sp = SparseInput.if_sparse(x)
            if sp is not None:
                return sparse_linear(x, self.weight, self.bias, sp)
        return super().forward(x)  # matmul broadcasts over leading dims


class SeqConv2d(nn.Conv2d):
    """``nn.Conv2d`` applied to every step of ``[T, B, C, H, W]``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return _seq(super().forward, x)


class SeqAvgPool2d(nn.AvgPool2d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return _seq(super().forward, x)


class SeqSumPool2d(nn.Module):
    """Sum pooling (average pooling times the window size), as on neuromorphic chips."""

    def __init__(self, kernel_size: int, stride: int | None = None, padding: int = 0) -> None:
        super().__init__()
        self.kernel_size = int(kernel_size)
        self.stride = int(stride or kernel_size)
        self.padding = int(padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.kernel_size
        # divisor_override=1 makes the pool an exact sum (average * k^2 can round)
        return _seq(
            lambda z: F.avg_pool2d(
                z, k, self.stride, self.padding, count_include_pad=True, divisor_override=1
            ),
            x,
        )

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class SeqFlatten(nn.Module):
    """Flatten everything after ``[T, B]`` (C-order, as NIR's Flatten with start_dim=0)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], x.shape[1], -1)


class TimeDropout(nn.Module):
    """Dropout whose mask is drawn once per sample and fixed across all time steps."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout p must be in [0, 1), got {p}")
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = torch.rand_like(x[:1]) >= self.p
        return x * keep.to(x.dtype) / (1.0 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class TemporalNorm(nn.Module):
    """Temporal channel normalization: per-channel batch norm with statistics over (T, B)
    (and H, W for conv features); an affine map at inference, folded into weights at export."""

    def __init__(self, channels: int, ndim: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels) if ndim == 3 else nn.BatchNorm1d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _seq(self.bn, x)

    def affine(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Inference-time per-channel (scale, shift)."""
        bn = self.bn
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        return scale, bn.bias - bn.running_mean * scale


class Residual(nn.Module):
    """``block(x) + shortcut(x)``: both branches produce input currents of the next neuron."""

    def __init__(self, block: nn.Sequential, shortcut: nn.Sequential) -> None:
        super().__init__()
        self.block = block
        self.shortcut = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x) + self.shortcut(x)
