"""Numba kernels of the event-driven reference simulator (:mod:`snn2hw.backends.event`):
what every kernel shares, the event scan and the identity path. The operators' kernels live
beside it by family: :mod:`~snn2hw.backends.event_kernels_dense` (dense synapses, with
delays), :mod:`~snn2hw.backends.event_kernels_conv` (conv and sum pooling),
:mod:`~snn2hw.backends.event_kernels_lif` (the LIF step, one of them fused with a conv).

Rows: every kernel works on rows of flat values ``[rows, size]`` (each value in the layout
the simulator chose for it: C order or channels-last), the B samples of one step after
another for one or more consecutive steps (``rows = steps * B``; a LIF's state ``[B, N]``
is carried from each step's rows to the next's); per-step tallies (synaptic events, spikes,
active updates, max fan-in) are added into ``[steps, k]`` arrays, row r into step ``r //
B``. Values: int64 state and
outputs (int32 state for a LIF whose step provably fits it,
:func:`~snn2hw.backends.event_kernels_lif.lif_narrow`); inputs in their source's own integer
dtype (a frame, a uint8 row of the spike record), each value widened to int64 before any
arithmetic (numba promotes integer operands narrower than 64 bits to int64). Synaptic
kernels visit only the non-zero entries (events) of their input
(:func:`nonzero_positions`) and scatter each event into its fan-out. All arithmetic is
int64 (int16 or int32 only where a bound proves the values fit). No torch anywhere (the
point of this backend is to be independent of the torch integer backend).

Each synaptic kernel also fills ``cnt`` (when ``need_cnt``): the number of synaptic events
with a non-zero weight that reached each output position this step; the LIF kernels take
its maximum (``peak_fanin``).

May import: numba (with its llvmlite, for machine operations numba lacks: the integer
width helpers below, :func:`nonzero_positions`) and numpy only.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

# 24-bit constants of docs/qgraph.md (the conv output wrap; u/v widths are parameters).
_U_HI = 1 << 23
_MASK24 = (1 << 24) - 1

# How the family compiles: cached on disk, releasing the GIL (runs split across threads),
# no bounds checks (indices come from prepared tables); small helpers inlined at call sites
# so that constant arguments prune their branches.
njit_kernel = numba.njit(cache=True, nogil=True, boundscheck=False)
njit_inline = numba.njit(cache=True, nogil=True, boundscheck=False, inline="always")

# Integer width follows the data: numba widens every integer operation to int64, so the
# single-spike LIF step with int32 state (``event_kernels_lif.lif_narrow``) converts each
# result back to the state's type (:func:`like`) and shifts in that width (:func:`shl`,
# :func:`ashr`); the compiler then keeps the whole step in 32-bit lanes, twice as many per
# vector instruction. For int64 values each of these is the plain int64 operation.


def _integer_of(t: Any) -> Any:
    """The integer type of a numba integer type or of an integer array's elements."""
    t = t.dtype if isinstance(t, types.Array) else t
    return t if isinstance(t, types.Integer) else None


@intrinsic
def like(typingctx, witness, value):
    """``value`` converted (wrapped) to the integer type of ``witness`` (an integer or an
    integer array)."""
    target = _integer_of(witness)
    if target is None or not isinstance(value, (types.Integer, types.Boolean)):
        return None

    def codegen(context, builder, signature, args):
        return context.cast(builder, args[1], signature.args[1], target)
    return target(witness, value), codegen


def _shift_op(name: str, doc: str) -> Any:
    """An intrinsic for the LLVM shift ``name`` in the width of its first operand."""

    def typer(typingctx, x, s):
        if not (isinstance(x, types.Integer) and isinstance(s, types.Integer)):
            return None

        def codegen(context, builder, signature, args):
            amount = context.cast(builder, args[1], signature.args[1], x)
            return getattr(builder, name)(args[0], amount)
        return x(x, s), codegen

    typer.__doc__ = doc
    return intrinsic(typer)


shl = _shift_op("shl", "``x << s`` in the width of ``x`` (``0 <= s <`` its bits).")
ashr = _shift_op("ashr", "``x >> s`` (arithmetic) in the width of ``x`` (``0 <= s <`` "
                          "its bits).")


@intrinsic
def bits_of(typingctx, x):
    """The width in bits of the integer type of ``x``."""
    t = _integer_of(x)
    if t is None:
        return None

    def codegen(context, builder, signature, args):
        return context.get_constant(types.int64, t.bitwidth)
    return types.int64(x), codegen


@njit_kernel
def shift(x: int, e: int) -> int:
    """``shift(x, e)`` of docs/qgraph.md: ``x << e`` for e >= 0, else floor ``x >> -e``,
    branch-free, so loops over it vectorize; in the width of ``x`` with the amount capped
    at its bits - 1. For int32 ``x`` that is exact modulo 2^32, which :func:`wrap24`
    needs (a shift left by 24 or more leaves no low bits either way)."""
    cap = bits_of(x) - 1
    return shl(ashr(x, min(max(-e, 0), cap)), min(max(e, 0), cap))


@njit_kernel
def wrap24(x: int) -> int:
    """``wrap24(x) = ((x + 2^23) mod 2^24) - 2^23`` (two's complement, so ``&`` is mod), in
    the width of ``x``."""
    return like(x, like(x, like(x, x + _U_HI) & _MASK24) - _U_HI)


@njit_kernel
def unpack(a: int, bits: int) -> tuple[int, int]:
    """A packed conv sum ``true + count << bits`` (``|true| < 2^(bits-1)``): ``(count,
    true)``, in the width of ``a`` (int32 for the packed int32 sums: ``a + 2^15`` stays
    below 2^31 there, the count being below 2^15)."""
    c = like(a, like(a, a + (1 << (bits - 1))) >> bits)
    return c, like(a, a - (c << bits))


@njit_kernel
def packed_activation(a: int, bits: int, e: int) -> int:
    """The conv output ``wrap24(shift(true, e))`` of a packed conv sum ``a = true + count <<
    bits`` (:func:`unpack`), in three shifts in the width W of ``a`` (unpack's four
    operations and two shifts each for the shift and the wrap take eight): ``a << (W -
    bits)`` puts true in the top bits; shifting that by ``e + bits - 24`` puts the low 24
    bits of ``true * 2^e`` in the top 24 bits (a left shift drops exactly what wrap24
    drops; a right shift floors, and the value then fits 24 bits, so wrap24 changes
    nothing); ``>> (W - 24)`` sign-extends them."""
    w = bits_of(a)
    return ashr(shift(shl(a, w - bits), e + bits - 24), w - 24)


@intrinsic
def _cttz(typingctx, x):
    """The number of trailing zero bits of a non-zero uint64 (one ``tzcnt``)."""
    def codegen(context, builder, signature, args):
        return builder.cttz(args[0], ir.Constant(ir.IntType(1), 1))
    return types.int64(types.uint64), codegen


@intrinsic
def _nonzero_mask64(typingctx, row, start):
    """Bit j set where ``row[start + j] != 0``, j < 64, for a 1-D integer row of unit stride
    (one vector compare of 64 entries into a mask register; numba has no such operation
    and its loops over the bytes do not become one)."""
    if not (isinstance(row, types.Array) and isinstance(row.dtype, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        vec = ir.VectorType(ir.IntType(row.dtype.bitwidth), 64)
        ptr = builder.bitcast(builder.gep(data, [args[1]]), vec.as_pointer())
        lanes = builder.load(ptr, align=1)
        nonzero = builder.icmp_unsigned("!=", lanes, ir.Constant(vec, None))
        return builder.bitcast(nonzero, ir.IntType(64))
    return types.uint64(row, types.intp), codegen


@intrinsic
def add_lanes16(typingctx, dst, d, src, s):
    """``dst[d:d + 16] += src[s:s + 16]`` for int32 arrays of unit stride, as one 16-lane
    vector add (unaligned load, add, store; no bounds check). numba's loop over a run of
    runtime length vectorizes 64 values per trip behind a runtime overlap check, so the
    48-value runs of a conv block ran in its scalar remainder loop."""
    if not all(isinstance(a, types.Array) and a.dtype == types.int32 and a.ndim == 1
               and a.layout == "C" for a in (dst, src)) or not dst.mutable:
        return None  # a strided or 2-D view would add other elements: refuse to compile

    def codegen(context, builder, signature, args):
        vec = ir.VectorType(ir.IntType(32), 16).as_pointer()
        d_data = context.make_array(signature.args[0])(context, builder, args[0]).data
        s_data = context.make_array(signature.args[2])(context, builder, args[2]).data
        pd = builder.bitcast(builder.gep(d_data, [args[1]]), vec)
        ps = builder.bitcast(builder.gep(s_data, [args[3]]), vec)
        total = builder.add(builder.load(pd, align=4), builder.load(ps, align=4))
        builder.store(total, pd, align=4)
        return context.get_dummy_value()
    return types.void(dst, types.int64, src, types.int64), codegen


def _target_has_avx512() -> bool:
    """Whether numba compiles for a CPU with AVX-512F (its host CPU, unless
    ``NUMBA_CPU_NAME`` names another: then only where ``NUMBA_CPU_FEATURES`` lists it)."""
    from llvmlite import binding
    from numba.core import config

    features = config.CPU_FEATURES
    if features is None:
        if config.CPU_NAME is not None:
            return False
        features = binding.get_host_cpu_features().flatten()
    return "+avx512f" in features.split(",")


AVX512 = _target_has_avx512()


@intrinsic
def _compress16(typingctx, idx, n, base, mask):
    """Write ``base + j`` for every set bit j of the low 16 bits of ``mask`` into the int32
    array ``idx`` from position ``n`` (in increasing j) and return ``n`` plus their number:
    one AVX-512 ``vpcompressd`` into a register and one 16-lane store (it writes
    ``idx[n:n + 16]``; the lanes past the count are left for later writes)."""
    if not (isinstance(idx, types.Array) and idx.dtype == types.int32):
        return None

    def codegen(context, builder, signature, args):
        i32 = ir.IntType(32)
        vec, lanes = ir.VectorType(i32, 16), ir.VectorType(ir.IntType(1), 16)
        bits = builder.trunc(args[3], ir.IntType(16))
        first = builder.insert_element(ir.Constant(vec, None), builder.trunc(args[2], i32),
                                       ir.Constant(i32, 0))
        base = builder.shuffle_vector(first, ir.Constant(vec, None), ir.Constant(vec, [0] * 16))
        positions = builder.add(base, ir.Constant(vec, list(range(16))))
        compress = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(vec, [vec, vec, lanes]),
            "llvm.x86.avx512.mask.compress.v16i32")
        packed = builder.call(compress, [positions, ir.Constant(vec, None),
                                         builder.bitcast(bits, lanes)])
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        builder.store(packed, builder.bitcast(builder.gep(data, [args[1]]), vec.as_pointer()),
                      align=4)
        return builder.add(args[1], builder.zext(builder.ctpop(bits), ir.IntType(64)))
    return types.int64(idx, types.int64, types.int64, types.uint64), codegen


@njit_kernel
def nonzero_positions_compress(xb, idx):
    """:func:`nonzero_positions` with AVX-512 (only compiled where :data:`AVX512`): each
    block's mask of events is written out by four 16-lane compresses, no branch per event
    (the branch per event of :func:`nonzero_positions_tzcnt` mispredicts whenever a block's
    event count changes: 0.52 vs 0.19 us per row of 4096 entries at 2 % activity). ``idx``
    is int32."""
    n = 0
    m = xb.size
    n_blocks = m // 64 if xb.strides[0] == xb.itemsize else 0  # blocks need unit stride
    for q in range(n_blocks):
        mask = _nonzero_mask64(xb, q * 64)
        if mask != 0:  # n + 16 <= q * 64 + 16k + 16 <= m: every store stays inside idx
            n = _compress16(idx, n, q * 64, mask)
            n = _compress16(idx, n, q * 64 + 16, mask >> np.uint64(16))
            n = _compress16(idx, n, q * 64 + 32, mask >> np.uint64(32))
            n = _compress16(idx, n, q * 64 + 48, mask >> np.uint64(48))
    for j in range(n_blocks * 64, m):
        idx[n] = j
        n += xb[j] != 0
    return n


@njit_kernel
def nonzero_positions_tzcnt(xb, idx):
    """:func:`nonzero_positions` on any x86-64 (or other) CPU: each event of a block's mask
    is one ``tzcnt`` (at the few % activity of spike records most blocks hold 0-3 events;
    5-6x faster than a branch-free pass over every entry)."""
    n = 0
    m = xb.size
    n_blocks = m // 64 if xb.strides[0] == xb.itemsize else 0  # blocks need unit stride
    for q in range(n_blocks):
        mask = _nonzero_mask64(xb, q * 64)
        while mask != 0:
            idx[n] = q * 64 + _cttz(mask)
            n += 1
            mask &= mask - np.uint64(1)
    for j in range(n_blocks * 64, m):
        idx[n] = j
        n += xb[j] != 0
    return n


# Write the positions of the non-zero entries of the 1-D row ``xb`` into the int32 array
# ``idx`` (in increasing order, capacity ``xb.size``) and return how many there are. Blocks
# of 64 entries: one vector compare gives the block's mask of events; the last ``size %
# 64`` entries (and a row of other than unit stride) are visited one by one, the position
# written unconditionally and the count advanced by ``x != 0`` (no mispredicted branch per
# event). The variant is chosen once for the CPU numba compiles for.
nonzero_positions = nonzero_positions_compress if AVX512 else nonzero_positions_tzcnt


# A (C, H, W) position packed in one int64 (the operators' position tables, built where
# they are prepared): channel << 40 | row << 20 | column. One load per event instead of
# two or three integer divisions (tens of cycles each) by the runtime sizes.
POS_BITS = 20
_POS_MASK = (1 << POS_BITS) - 1


@njit_inline
def position(p):
    """``(channel, row, column)`` of a packed position (:data:`POS_BITS`)."""
    return p >> (2 * POS_BITS), (p >> POS_BITS) & _POS_MASK, p & _POS_MASK


@njit_kernel
def identity_scatter(x, out, cnt, syn):
    """A path without weighted operators (only flattens): ``a = x``; every non-zero value
    is one event through a weight-1 synapse (counted in both columns of ``syn[step]``,
    "Rows" above)."""
    nb, n = x.shape
    per_step = nb // max(syn.shape[0], 1)
    for b in range(nb):
        n_ev = 0
        for i in range(n):
            v = x[b, i]
            out[b, i] = v
            cnt[b, i] = v != 0
            n_ev += v != 0
        syn[b // per_step, 0] += n_ev
        syn[b // per_step, 1] += n_ev


@njit_kernel
def checksum64(words):
    """Fletcher-style checksum of a uint64 array (wrapping sums): ``s1`` changes with any
    single word, ``s2`` (the running sum of ``s1``) also with the order of the words.
    Used to notice a graph array written in place since its plan was prepared."""
    s1 = np.uint64(0)
    s2 = np.uint64(0)
    for i in range(words.size):
        s1 += words[i]
        s2 += s1
    return s1, s2
