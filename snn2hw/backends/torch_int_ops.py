"""Arithmetic of the torch integer backend (:mod:`snn2hw.backends.torch_int`).

Holds the docs/qgraph.md integer notation on int64 tensors (``rtz``, ``shift``, ``wrap24``),
the Dense weight preparation, the LIF step and the prepared synaptic operators (dense,
conv, sumpool, flatten) with their exactness bounds. Split from ``torch_int.py`` (which
keeps the exactness argument in its docstring, the network and its time loop) to keep each
module readable; it is part of the same backend.

May import: torch, numpy, ``snn2hw.common``, ``snn2hw.quant``. Never another backend
(event, lava, onnx) nor pipeline, chip, training, reporting or cli.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from snn2hw.common.errors import GraphError
from snn2hw.quant.formats import LOIHI_FORMATS, NumberFormats
from snn2hw.quant.qgraph import ConvNode, DenseNode, SumPoolNode

__all__ = [
    "ACT_SHIFT",
    "U_SPAN",
    "ConvOp",
    "DenseOp",
    "FlattenOp",
    "Op",
    "SumPoolOp",
    "lif_step",
    "prepare_dense_weight",
    "reset_due",
    "u_stays_in_range",
]

# Loihi's formats (the defaults; a graph's own are QGraph.formats):
_U_MAX = 2**23  # u wraps when > +2^23 or <= -2^23 (docs/qgraph.md, LIF step)
U_SPAN = 2**24
ACT_SHIFT = 6  # synaptic input and threshold are left-aligned by 6 bits
_F64_EXACT = 2**53  # every integer of magnitude <= 2^53 is a float64
_F32_EXACT = 2**24
_F32_OPERAND_MAX = 256  # exact even under TF32 / bfloat16 operand rounding


# ----- arithmetic (docs/qgraph.md "Notation") ----------------------------------------------
def _rtz(x: torch.Tensor, k: int) -> torch.Tensor:
    """rtz(x, k) = sign(x) * (|x| >> k): shift toward zero (not floor)."""
    return torch.sign(x) * (x.abs() >> k)


def _shift(x: torch.Tensor, e: int) -> torch.Tensor:
    """shift(x, e) = x << e if e >= 0 else x >> -e; >> on int64 is arithmetic (floor)."""
    if e > 0:
        return x << e
    if e < 0:
        return x >> -e
    return x


def _wrap24(x: torch.Tensor) -> torch.Tensor:
    """wrap24(x) = ((x + 2^23) mod 2^24) - 2^23; the mask is a mod for two's complement."""
    return ((x + _U_MAX) & (U_SPAN - 1)) - _U_MAX


def _shift_bound(bound: int, e: int) -> int:
    """Largest |shift(x, e)| for |x| <= bound (floor of a negative rounds away from 0)."""
    return bound << e if e >= 0 else -((-bound) >> -e)


def prepare_dense_weight(
    weight: np.ndarray, num_weight_bits: int, formats: NumberFormats = LOIHI_FORMATS
) -> np.ndarray:
    """Dense weight preparation, once per layer (docs/qgraph.md "Dense weight preparation"),
    with the graph's formats (Loihi's values in brackets).

    1. sign mode: EXCITATORY if min(W) >= 0 (all-zero included), INHIBITORY if max(W) <= 0,
       else MIXED;
    2. clip to weight_range_mixed / _excitatory / _inhibitory ([-256, 255], [0, 255],
       [-255, 0]);
    3. truncate: k = weight_mantissa_bits (8) - num_weight_bits + (1 if MIXED and
       mixed_sign_lsb_loss); W' = (W >> k) << k (floor), and for INHIBITORY
       W' = -(((-W) >> k) << k).  Loihi: mixed [7, -7] becomes [6, -8].

    Returns int64 W' with the shape of ``weight``.
    """
    f = formats
    w = np.asarray(weight, dtype=np.int64)
    k = f.weight_mantissa_bits - num_weight_bits
    if w.size == 0 or w.min() >= 0:
        return (np.clip(w, *f.weight_range_excitatory) >> k) << k
    if w.max() <= 0:
        return -(((-np.clip(w, *f.weight_range_inhibitory)) >> k) << k)
    k += int(f.mixed_sign_lsb_loss)
    return (np.clip(w, *f.weight_range_mixed) >> k) << k


def lif_step(
    u: torch.Tensor,
    v: torch.Tensor,
    a: torch.Tensor | int,
    du: int,
    dv: int,
    bias: torch.Tensor | int,
    vth: int,
    formats: NumberFormats = LOIHI_FORMATS,
    max_spikes: int = 1,
    from_rest: bool = False,
    u_in_range: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One CUBA LIF step on int64 tensors (docs/qgraph.md "LIF step") with the
    graph's number formats; Loihi's by default.

    ``a`` is the summed synaptic input, ``bias = bias_mant << bias_exp``. Returns the new
    ``(u, v, spikes)``; spikes are bool for ``max_spikes == 1``, else the int64 count
    ``n`` (docs/qgraph.md "Multi-spike output"). With ``S = 2^decay_bits``, ``sh`` the
    activation shift, ``TH = vth << sh`` and Loihi's values in brackets::

        u = rtz(u * (S - (du + 1)), decay_bits) + (a << sh)      # S = 4096, sh = 6
        u = ovf(u, u_bits, u_overflow)                           # 24 bits, wrap
        v = rtz(v * (S - dv), decay_bits) + u + b
        v = ovf(v, v_bits, v_overflow)                           # 24 bits, saturate
        s = v > TH                     (or >= : threshold_compare)
        v = 0 where s                  (or v - TH: reset = "subtract"); u not reset

    and for ``max_spikes > 1``, instead of the last two lines::

        n = min(max_spikes, floor(v / TH))         if v >= TH else 0   # ">="
        n = min(max_spikes, floor((v - 1) / TH))   if v >  TH else 0   # ">"
        v = 0 where n > 0              (or v - n * TH: reset = "subtract")

    ``ovf(x, n, "wrap")``: ``x - 2^n`` if ``x > 2^(n-1)``, ``x + 2^n`` if
    ``x <= -2^(n-1)`` (one correction; +2^(n-1) is kept); ``ovf(x, n, "saturate")``:
    ``clip(x, -(2^(n-1) - 1), 2^(n-1) - 1)``.

    ``from_rest``: the step is one of the node's periodic resets (docs/qgraph.md "Periodic
    state reset", :func:`reset_due`): ``u`` and ``v`` are set to 0 *before* this step's
    input is integrated, so its input, bias and threshold act on a neuron at rest.

    ``u_in_range``: the caller has proved ``|u| < 2^(u_bits-1)`` after the add on every step
    (:func:`u_stays_in_range`), so ``ovf(u, ...)`` changes nothing and is skipped.
    """
    f = formats
    sh, db = f.activation_shift, f.decay_bits
    if from_rest:
        u, v = torch.zeros_like(u), torch.zeros_like(v)
    if isinstance(a, torch.Tensor):
        a = a << sh
    else:
        a = int(a) << sh
    # du + 1: Lava's hidden offset; du = -1 means no current decay.
    u = _decay(u, (1 << db) - (du + 1), db) + a
    if not u_in_range:
        u = _overflow(u, f.u_bits, f.u_overflow)
    v = _decay(v, (1 << db) - dv, db) + u + bias
    v = _overflow(v, f.v_bits, f.v_overflow)
    th = vth << sh
    if max_spikes > 1:
        return (u, *_multi_spike(v, th, max_spikes, f))
    s = v >= th if f.threshold_compare == ">=" else v > th
    v = v.masked_fill(s, 0) if f.reset == "zero" else torch.where(s, v - th, v)
    return u, v, s


def u_stays_in_range(a_bound: int, du: int, formats: NumberFormats = LOIHI_FORMATS) -> bool:
    """Whether ``u`` can never leave ``(-2^(u_bits-1), 2^(u_bits-1))``, so the u overflow
    rule is a no-op, given ``|a| <= a_bound`` on every step.

    Induction: ``u`` starts (and restarts) at 0; if ``|u| < H = 2^(u_bits-1)`` then
    ``|rtz(u * m, db)| <= (H * m) >> db`` with ``m = 2^db - (du + 1)``, and the new ``u`` is
    at most that plus ``a_bound << activation_shift`` in magnitude; below ``H`` closes the
    induction. ``du = 4095`` (m = 0, Sinabs/IF exports) leaves only the input term."""
    f = formats
    half = 1 << (f.u_bits - 1)
    m = (1 << f.decay_bits) - (du + 1)
    return ((half * m) >> f.decay_bits) + (a_bound << f.activation_shift) < half


def _decay(x: torch.Tensor, mult: int, db: int) -> torch.Tensor:
    """rtz(x * mult, db), with the two common factors done without arithmetic: mult = 0
    (du = 4095: no current memory) gives 0, mult = 2^db (dv = 0: no leak) gives x
    exactly (x * 2^db is a multiple of 2^db, so the shift toward zero drops nothing)."""
    if mult == 0:
        return torch.zeros_like(x)
    if mult == 1 << db:
        return x
    return _rtz(x * mult, db)


def reset_due(n: int, interval: int, offset: int) -> bool:
    """Whether step ``n`` (0-based from the sample's first step) starts from rest:
    ``interval > 0 and n % interval == offset`` (docs/qgraph.md "Periodic state reset")."""
    return interval > 0 and n % interval == offset


def _multi_spike(v: torch.Tensor, th: int, max_spikes: int, f: NumberFormats
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """The count ``n`` of thresholds ``th`` (>= 1) crossed, capped, and the reset ``v``.

    For ``">"`` the count is ``floor((v - 1) / th)`` for ``v > th``; clamping the dividend
    at 0 gives 0 below the threshold and keeps ``//`` (floor) on non-negative integers."""
    num = v if f.threshold_compare == ">=" else v - 1
    n = torch.clamp(num.clamp_min(0) // th, max=max_spikes)
    v = v.masked_fill(n > 0, 0) if f.reset == "zero" else v - n * th
    return v, n


def _overflow(x: torch.Tensor, bits: int, rule: str) -> torch.Tensor:
    """docs/qgraph.md overflow rules: a single conditional wrap correction each way (as
    Lava's np.where pair, not a modulo), or symmetric saturation."""
    half = 1 << (bits - 1)
    if rule == "saturate":
        return x.clamp(-(half - 1), half - 1)
    x = torch.where(x > half, x - 2 * half, x)
    return torch.where(x <= -half, x + 2 * half, x)


# ----- synaptic operators -----------------------------------------------------------------
class Op:
    """A prepared synaptic operator: integer tensor [B, *in] -> int64 tensor [B, *out].

    Synaptic delays (docs/qgraph.md "Synaptic delays") are split in two calls so that the
    network can hold them in a delay line: :meth:`products` gives, for one input step, the
    operator's contribution per delay ``d`` (due ``d`` steps later), and :meth:`finish`
    turns the sum of everything due at one step into the output. Only Dense does
    arithmetic in ``finish`` (its one floor shift of the summed products); for the others
    the delay line simply delays the output. ``max_delay == 0``: call the op directly."""

    def __init__(self, name: str, in_bound: int) -> None:
        self.name = name
        self.in_bound = in_bound  # largest |value| this operator can receive
        self.acc_bound = in_bound  # largest |partial sum| it can form
        self.out_bound = in_bound  # largest |value| it can emit
        self.dtype: torch.dtype | None = None  # float type of the linear op; None: no math
        self.delay = 0  # one delay for the whole operator (conv; 0 for sumpool, flatten)
        self.max_delay = 0

    def _pick_dtype(self, kind: str, weight_max: int = 0) -> None:
        """Choose float32/float64 from the proven partial-sum bound and the largest operand
        magnitudes, input and weight (see the docstring of :mod:`snn2hw.backends.torch_int`).
        """
        if self.acc_bound >= _F64_EXACT:
            raise GraphError(
                f"node '{self.name}' ({kind}): partial sums can reach {self.acc_bound} "
                f"(>= 2^53), which torch integer mode cannot compute exactly; "
                "reduce weights, weight_exp or input payload bits"
            )
        f32_ok = (self.acc_bound < _F32_EXACT and self.in_bound <= _F32_OPERAND_MAX
                  and weight_max <= _F32_OPERAND_MAX)
        self.dtype = torch.float32 if f32_ok else torch.float64

    def __call__(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def products(self, x: torch.Tensor) -> list[tuple[int, torch.Tensor]]:
        """``(delay, contribution)`` pairs of one input step."""
        return [(self.delay, self(x))]

    def finish(self, acc: torch.Tensor) -> torch.Tensor:
        """The output from the sum of the contributions due at one step."""
        return acc


class DenseOp(Op):
    """shift(W' @ x, weight_exp); input read C-order flattened; no saturation.

    With delays: ``a_i[m] = shift(sum_j W'[i, j] * x_j[m - D[i, j]], weight_exp)``. ``W'``
    is prepared from the whole matrix (its sign mode is the matrix's), then split into one
    matrix per distinct delay value (zeros elsewhere); the products of all of them due at
    one step are summed before the one floor shift (:meth:`products`, :meth:`finish`)."""

    def __init__(self, node: DenseNode, in_bound: int, device: torch.device,
                 formats: NumberFormats = LOIHI_FORMATS) -> None:
        super().__init__(node.name, in_bound)
        w = prepare_dense_weight(node.weight, node.num_weight_bits, formats)
        row_abs = int(np.abs(w).sum(axis=1).max()) if w.size else 0
        # Each synapse contributes once per arrival step whatever its delay, so the sum
        # due at one step obeys the same bound as an undelayed W' @ x.
        self.acc_bound = row_abs * in_bound
        self._pick_dtype("dense")
        self.weight_exp = int(node.weight_exp)
        self.out_bound = _shift_bound(self.acc_bound, self.weight_exp)
        d = np.broadcast_to(np.asarray(node.delay, dtype=np.int64), w.shape)
        self.delays = tuple(int(k) for k in np.unique(d)) if w.size else (0,)
        self.max_delay = max(self.delays)
        # Stored transposed, the per-delay matrices side by side: each step is one
        # [B, N_in] @ [N_in, K * N_out] for the K distinct delay values.
        self.n_out = int(w.shape[0])
        self.wt = torch.as_tensor(
            np.concatenate([np.where(d == k, w, 0).T for k in self.delays], axis=1),
            dtype=self.dtype, device=device,
        )

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """The undelayed operator (``max_delay == 0``: a single matrix)."""
        if self.max_delay:
            raise RuntimeError(f"dense '{self.name}' has delays: use products/finish")
        return _shift(self._mm(x), self.weight_exp)  # floor of the SUM, not of each product

    def _mm(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.reshape(x.shape[0], -1).to(self.dtype)
        return torch.mm(xf, self.wt).round_().to(torch.int64)

    def products(self, x: torch.Tensor) -> list[tuple[int, torch.Tensor]]:
        acc = self._mm(x).reshape(x.shape[0], len(self.delays), self.n_out)
        return [(k, acc[:, i]) for i, k in enumerate(self.delays)]

    def finish(self, acc: torch.Tensor) -> torch.Tensor:
        return _shift(acc, self.weight_exp)  # floor of the sum over delays, not per delay


class ConvOp(Op):
    """wrap24(shift(conv2d(x, W), weight_exp)), PyTorch cross-correlation, zero padding."""

    def __init__(self, node: ConvNode, in_bound: int, device: torch.device) -> None:
        super().__init__(node.name, in_bound)
        w = np.asarray(node.weight, dtype=np.int64)  # used as stored: no clip, no truncation
        c_out, c_in_g, kh, kw = (int(s) for s in w.shape)
        per_out = np.abs(w).reshape(c_out, -1).sum(axis=1)
        self.acc_bound = int(per_out.max()) * in_bound if w.size else 0
        # Conv weights are used as stored (no clip): check them as operands too.
        self._pick_dtype("conv", int(np.abs(w).max()) if w.size else 0)
        self.weight_exp = int(node.weight_exp)
        self.out_bound = min(_shift_bound(self.acc_bound, self.weight_exp), _U_MAX)
        self.delay = self.max_delay = int(node.delay)  # delays the wrapped output
        self.groups = int(node.groups)
        self.in_shape = tuple(int(s) for s in node.input_shape)
        self.out_shape = tuple(int(s) for s in node.out_shape)
        self.kernel = (kh, kw)
        self.stride = tuple(int(s) for s in node.stride)
        self.padding = tuple(int(s) for s in node.padding)
        self.dilation = tuple(int(s) for s in node.dilation)
        # unfold orders its rows (c, i, j) with c slowest, matching W.reshape per group.
        self.w = torch.as_tensor(
            w.reshape(self.groups, c_out // self.groups, c_in_g * kh * kw),
            dtype=self.dtype,
            device=device,
        )

        self.w4 = torch.as_tensor(w, dtype=self.dtype, device=device)
        self.last_path = ""  # "direct" or "unfold": which formulation the last call used
        self._direct: dict[int, bool] = {}  # batch size -> library conv is a direct sum

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        xf = x.reshape(b, *self.in_shape).to(self.dtype)
        if self._direct_ok(xf):
            self.last_path = "direct"
            acc = F.conv2d(xf, self.w4, None, self.stride, self.padding, self.dilation,
                           self.groups)
        else:
            self.last_path = "unfold"
            acc = self._unfold_gemm(xf)
        acc = acc.round_().to(torch.int64).reshape(b, *self.out_shape)
        return _wrap24(_shift(acc, self.weight_exp))

    def _unfold_gemm(self, xf: torch.Tensor) -> torch.Tensor:
        """conv2d as an exact gather (unfold) plus an integer-valued GEMM."""
        b = xf.shape[0]
        cols = F.unfold(xf, self.kernel, self.dilation, self.padding, self.stride)
        cols = cols.reshape(b, self.groups, -1, cols.shape[-1])
        return torch.matmul(self.w, cols)  # [B, G, C_out/G, L]: exact integer GEMM

    def _direct_ok(self, xf: torch.Tensor) -> bool:
        """Whether ``F.conv2d`` would run a formulation that only sums products (see
        :func:`conv_is_direct_sum`), cached per batch size."""
        b = int(xf.shape[0])
        ok = self._direct.get(b)
        if ok is None:
            ok = self._direct[b] = conv_is_direct_sum(
                xf, self.w4, self.stride, self.padding, self.dilation, self.groups)
        return ok


# ConvBackend values of torch's conv2d dispatcher whose arithmetic is a plain sum of
# products: oneDNN called by PyTorch with ideep's default algorithm::convolution_direct
# (ideep include/ideep/operators/conv.hpp, `convolution_forward::compute`), and ATen's
# slow_conv2d / slow_conv_dilated2d (im2col + GEMM). Excluded: cuDNN (it may choose
# Winograd/FFT and TF32-rounded transforms), NNPACK (Winograd/FFT), XNNPACK and others.
_DIRECT_CONV_BACKENDS = frozenset({"Mkldnn", "Slow2d", "SlowDilated2d"})


def conv_is_direct_sum(xf: torch.Tensor, w: torch.Tensor, stride: tuple[int, ...],
                       padding: tuple[int, ...], dilation: tuple[int, ...], groups: int
                       ) -> bool:
    """True when ``F.conv2d(xf, w, ...)`` on the CPU dispatches to a direct-sum backend, so
    that an integer-valued input and weight within the operator's exactness bound give the
    exact integer result. False on CUDA (cuDNN picks its own algorithms) and whenever
    torch's dispatcher cannot be asked (a private API: the exact unfold path is then used).
    """
    if xf.device.type != "cpu":
        return False
    select = getattr(torch._C, "_select_conv_backend", None)
    if select is None:
        return False
    try:
        backend = select(xf, w, None, list(stride), list(padding), list(dilation), False,
                         [0] * len(stride), groups, None)
    except (RuntimeError, TypeError):
        return False
    return str(backend).rsplit(".", 1)[-1] in _DIRECT_CONV_BACKENDS


class SumPoolOp(Op):
    """Per-channel window sums with zero padding, exact, no shift, no wrap."""

    def __init__(self, node: SumPoolNode, in_bound: int) -> None:
        super().__init__(node.name, in_bound)
        kh, kw = (int(s) for s in node.kernel_size)
        self.acc_bound = kh * kw * in_bound
        self._pick_dtype("sumpool")
        self.out_bound = self.acc_bound
        self.in_shape = tuple(int(s) for s in node.input_shape)
        self.kernel = (kh, kw)
        self.stride = tuple(int(s) for s in node.stride)
        ph, pw = (int(s) for s in node.padding)
        # Explicit F.pad: avg_pool2d refuses padding larger than half the kernel.
        self.pad = (pw, pw, ph, ph)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.reshape(x.shape[0], *self.in_shape).to(self.dtype)
        if any(self.pad):
            xf = F.pad(xf, self.pad)
        # divisor_override=1 turns the average into the plain window sum.
        s = F.avg_pool2d(xf, self.kernel, self.stride, divisor_override=1)
        return s.round_().to(torch.int64)


class FlattenOp(Op):
    """C-order reshape to 1-D; no arithmetic."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], -1)
