"""The event simulator's event scan and int32 LIF state, by differential tests on random
cases:

1. ``event_kernels.nonzero_positions`` (64-entry vector compare into a mask + ``tzcnt``)
   against ``np.flatnonzero`` on every integer dtype, lengths around the 64-entry block,
   strided and reversed views, values with only the sign bit or one high bit set (the
   simulator fed non-contiguous frames: tests/backends/test_input_frames.py).
2. int32 state for a fused conv -> single-spike LIF (``event_kernels_lif.lif_narrow``):
   random number formats (u/v widths and overflow rules, activation shift, reset,
   comparison, decay bits, bias mantissa/exponent ranges, weight ranges and exponents),
   graded inputs in every conv sum mode, threads and odd batches, periodic resets, a plan
   re-prepared after the graph is changed in place. Spikes, u and v against the torch
   integer backend; the activity counters against counts derived here (the conv's fan-in
   and synapse counts from test_event's plain numpy conv, neuron updates from torch-int's
   states). The LIF step alone: int32 and int64 kernels on adversarial activations for
   every constant set the bound accepts.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from test_event import assert_matches_reference, ref_apply
from test_format_semantics import ref_lif

from snn2hw.backends import event, torch_int
from snn2hw.backends import event_kernels as K
from snn2hw.backends import event_kernels_lif as lif_k
from snn2hw.quant.formats import LOIHI_FORMATS, NumberFormats
from snn2hw.quant.qgraph import (
    ConvNode,
    DenseNode,
    InputNode,
    LIFNode,
    OutputNode,
    QGraph,
    SumPoolNode,
)

COUNTERS = ("synops", "synops_dense", "neuron_updates", "spike_counts", "peak_fanin")

# ----------------------------------------------------------------- 1. nonzero_positions

DTYPES = [np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32, np.int64, np.uint64]


def _special_values(dt: np.dtype) -> list[int]:
    """Non-zero values a compare of the wrong width or signedness would miss: only the sign
    bit, only the top bit of each byte, 1, -1 (all ones)."""
    bits = np.dtype(dt).itemsize * 8
    out = [1, (1 << (bits - 1)), (1 << (bits - 1)) | 1]
    out += [1 << b for b in range(7, bits, 8)]  # the top bit of each byte alone
    out.append((1 << bits) - 1)  # all ones (-1 for a signed type)
    return out


def _row(rng: np.random.Generator, dt: np.dtype, m: int, density: float) -> np.ndarray:
    special = np.array(_special_values(dt), dtype=np.uint64)
    vals = special[rng.integers(0, special.size, m)].astype(dt)  # wraps into signed types
    return np.where(rng.random(m) < density, vals, 0).astype(dt)


# both variants where this CPU runs both (the AVX-512 one is what the kernels use there)
SCANS = [K.nonzero_positions_tzcnt] + ([K.nonzero_positions_compress] if K.AVX512 else [])


def _check_positions(x: np.ndarray) -> None:
    want = np.flatnonzero(x)
    for scan in SCANS:
        idx = np.full(x.size + 64, -7, dtype=np.int32)
        n = scan(x, idx)
        assert n == want.size, (scan, x.dtype, x.size, x.strides, n, want.size)
        np.testing.assert_array_equal(idx[:n], want,
                                      err_msg=f"{scan} {x.dtype} {x.size} {x.strides}")
        # capacity x.size: nothing written past it
        assert (idx[x.size:] == -7).all(), (scan, x.dtype, x.size)


@pytest.mark.parametrize("dt", DTYPES, ids=lambda d: np.dtype(d).name)
def test_nonzero_positions_agrees_with_flatnonzero_on_every_dtype_length_and_stride(dt):
    rng = np.random.default_rng(DTYPES.index(dt))
    cases = 0
    for m in (0, 1, 63, 64, 65, 127, 128, 129, 4097):
        for density in (0.0, 0.02, 0.5, 1.0):
            x = _row(rng, dt, m, density)
            _check_positions(x)  # contiguous
            big = _row(rng, dt, 2 * m + 1, density)
            _check_positions(big[::2])  # stride 2: the per-entry loop
            _check_positions(big[::-1][:m])  # reversed view (negative stride)
            _check_positions(big[1:m + 1])  # unaligned start (unit stride)
            col = np.asfortranarray(np.stack([x, x[::-1]], axis=1))[:, 0]  # F-order column
            _check_positions(col)
            _check_positions(np.broadcast_to(x[:1], (m,)) if m else x)  # stride 0
            cases += 6
    # one event per block at every lane, and every lane of one block alone
    for lane in range(64):
        x = np.zeros(192, dt)
        special = np.array(_special_values(dt), dtype=np.uint64).astype(dt)
        x[64 + lane] = special[lane % special.size]
        _check_positions(x)
        cases += 1
    assert cases == 9 * 4 * 6 + 64


# --------------------------------------------------------- 2. int32 state of a fused LIF

def _pick(rng: np.random.Generator, lo: int, hi: int, edge: float = 0.3) -> int:
    """An integer in [lo, hi], at one of the ends with probability ``edge``."""
    r = rng.random()
    if r < edge / 2:
        return lo
    if r < edge:
        return hi
    return int(rng.integers(lo, hi + 1))


def random_formats(rng: np.random.Generator, narrowish: bool) -> NumberFormats:
    """Random formats inside what the target schema and the event backend accept;
    ``narrowish``: widths and shift where int32 state may be chosen."""
    wm = _pick(rng, 1, 15)
    top = (1 << wm) - 1
    db = _pick(rng, 1, 20)
    if narrowish:
        sh = _pick(rng, 0, 7)
        ub = _pick(rng, 2, 30)
        vb = _pick(rng, 2, 30)
    else:
        sh = _pick(rng, 0, 16)
        # torch-int refuses u_bits near 62 (its int64 headroom check): up to 56
        ub = _pick(rng, 2, min(62 - db, 56))
        vb = _pick(rng, 2, 62 - db)
    bmb = _pick(rng, 2, 16)
    be_min = _pick(rng, -10, 0)
    return NumberFormats(
        weight_mantissa_bits=wm, weight_exp_min=-31, weight_exp_max=31,
        weight_range_mixed=(-top - 1, top), weight_range_excitatory=(0, top),
        weight_range_inhibitory=(-top - int(rng.integers(0, 2)), 0),
        mixed_sign_lsb_loss=bool(rng.integers(0, 2)), activation_shift=sh,
        u_bits=ub, u_overflow=str(rng.choice(["wrap", "saturate"])),
        v_bits=vb, v_overflow=str(rng.choice(["wrap", "saturate"])),
        decay_bits=db, threshold_bits=_pick(rng, 1, 32), bias_mant_bits=bmb,
        bias_exp_min=be_min, bias_exp_max=_pick(rng, max(be_min, 0), 20),
        max_message_bits=24, reset=str(rng.choice(["zero", "subtract"])),
        threshold_compare=str(rng.choice([">", ">="])))


def random_conv_lif(rng: np.random.Generator, f: NumberFormats, decays: bool,
                    reset_interval: int = 0) -> tuple[QGraph, np.ndarray]:
    """A conv feeding a single-spike LIF alone (fused), random in every parameter, and
    graded input frames ``[F, B, C, H, W]`` whose sums land in each conv sum mode."""
    c_in = int(rng.integers(1, 4))
    h, w = (int(v) for v in rng.integers(3, 7, 2))
    k = int(rng.integers(1, 4))
    k = min(k, h, w)
    c_out = int(rng.integers(1, 5))
    stride = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    pad = (int(rng.integers(0, k)), int(rng.integers(0, k)))
    groups = 1
    if rng.random() < 0.25:  # grouped (depthwise when c_out == c_in)
        groups = c_in
        c_out = c_in * int(rng.integers(1, 3))
    dil = (1, 1)
    if rng.random() < 0.25 and k > 1:  # dilated, where the dilated kernel still fits
        d = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        if all((k - 1) * d[i] + 1 <= (h, w)[i] + 2 * pad[i] for i in range(2)):
            dil = d
    lo, hi = f.weight_stored_range
    kind = rng.integers(0, 4)
    wshape = (c_out, c_in // groups, k, k)
    if kind == 0:  # the extremes of the stored range
        wt = rng.choice([lo, hi, 0, 1, -1], wshape)
    elif kind == 1:
        wt = rng.integers(0, hi + 1, wshape)
    elif kind == 2:
        wt = rng.integers(lo, 1, wshape)
    else:
        wt = rng.integers(lo, hi + 1, wshape) * (rng.random(wshape) < 0.7)
    wt = np.clip(wt, lo, hi).astype(np.int64)
    wexp = _pick(rng, -31, 31) if rng.random() < 0.4 else int(rng.integers(-8, 9))
    wexp = min(max(wexp, f.weight_exp_min), f.weight_exp_max)
    conv = ConvNode("c", wt, (c_in, h, w), stride=stride, padding=pad, dilation=dil,
                    groups=groups, weight_exp=wexp)
    shape = conv.out_shape
    smax = (1 << f.decay_bits) - 1
    if decays:
        du = int(rng.integers(-1, smax + 1))
        dv = int(rng.integers(0, smax + 1))
    else:
        du, dv = smax, 0
    vth_max = (1 << f.threshold_bits) - 1
    vth = int(rng.choice([0, 1, vth_max, int(rng.integers(0, vth_max + 1)),
                          int(rng.integers(0, min(vth_max, 1 << 12) + 1))]))
    m_lo, m_hi = f.bias_mant_range
    bm = rng.choice([m_lo, m_hi, 0, int(rng.integers(m_lo, m_hi + 1))], shape)
    if rng.random() < 0.3:
        bm = np.full(shape, rng.choice([m_lo, m_hi]))
    be = rng.integers(f.bias_exp_min, f.bias_exp_max + 1, shape)
    if rng.random() < 0.3:
        be = np.full(shape, rng.choice([f.bias_exp_min, f.bias_exp_max]))
    offset = int(rng.integers(0, reset_interval)) if reset_interval else 0
    neuron = LIFNode("l", shape, du=du, dv=dv, vth=vth, bias_mant=bm.astype(np.int64),
                     bias_exp=be.astype(np.int64), reset_interval=reset_interval,
                     reset_offset=offset)
    mb = int(rng.choice([0, 0, 1, 4, 8, 16, 24]))
    nodes = {n.name: n for n in (InputNode("in", (c_in, h, w), message_bits=mb), conv, neuron,
                                 OutputNode("out", shape))}
    g = QGraph(nodes, [("in", "c"), ("c", "l"), ("l", "out")], 1e-3, "random",
               int(rng.integers(3, 9)), formats=f).validate()
    frames, batch = int(rng.integers(2, 9)), int(rng.choice([1, 2, 3, 5]))
    dens = rng.choice([0.02, 0.2, 1.0])
    top = 1 if mb == 0 else (1 << mb) - 1
    vals = rng.choice([1, top, int(rng.integers(1, top + 1))], (frames, batch, c_in, h, w))
    x = vals * (rng.random((frames, batch, c_in, h, w)) < dens)
    # one input dtype, int64 as in test_event_fused / test_format_semantics: each dtype
    # compiles every fused kernel variant again (minutes on a cold numba cache);
    # nonzero_positions' dtypes are covered by the tests above
    return g, x.astype(np.int64)


def sum_mode(g: QGraph, xs: np.ndarray) -> str:
    """Which of the three sum modes the conv kernel takes for one sample's frame."""
    w = g.nodes["c"].weight
    wmax = int(np.abs(w).max(initial=0))
    wbound = wmax * int(np.prod(w.shape[1:]))
    xa = np.abs(xs.astype(np.int64))
    if int(xa.sum()) * wmax < 1 << 15:
        return "int32 packed"
    if wbound == 0 or int(xa.max(initial=0)) < (1 << 31) // wbound:
        return "int64 packed"
    return "int64"


def expected_counters(g: QGraph, x: np.ndarray, n_steps: int, ref) -> dict:
    """The activity counters of the LIF ``l`` from docs/qgraph.md, derived here: the conv's
    values, fan-in counts and synapse counts from test_event's numpy conv, the state
    before each step from torch-int's records (after a periodic reset)."""
    node: LIFNode = g.nodes["l"]
    bias = floor_bias(node)
    frames, batch = x.shape[:2]
    syn = np.zeros(n_steps, np.int64)
    dense = np.zeros(n_steps, np.int64)
    upd = np.zeros(n_steps, np.int64)
    peak = 0
    u_rec, v_rec = ref.u["l"], ref.v["l"]
    for n in range(n_steps):
        resets = node.reset_interval > 0 and n % node.reset_interval == node.reset_offset
        for b in range(batch):
            if 1 <= n <= frames:
                a, cnt, s, d = ref_apply(g, "c", x[n - 1, b].astype(np.int64))
                syn[n] += s
                dense[n] += d
                peak = max(peak, int(cnt.max(initial=0)))
            else:
                a = np.zeros(node.shape, np.int64)
            if n == 0 or resets:
                u0 = v0 = np.zeros(node.shape, np.int64)
            else:
                u0, v0 = u_rec[n - 1, b], v_rec[n - 1, b]
            upd[n] += int(np.sum((a != 0) | (u0 != 0) | (v0 != 0) | (bias != 0)))
    counts = ref.spikes["l"].reshape(n_steps, -1).sum(axis=1)
    return {"synops": syn, "synops_dense": dense, "neuron_updates": upd,
            "spike_counts": counts, "peak_fanin": peak}


def floor_bias(node: LIFNode) -> np.ndarray:
    """``bias_mant << bias_exp``, ``bias_mant >> -bias_exp`` (floor) for a negative
    exponent (docs/qgraph.md "LIF step" details)."""
    be = np.asarray(node.bias_exp, np.int64)
    bm = np.asarray(node.bias_mant, np.int64)
    return np.where(be >= 0, bm << np.maximum(be, 0), bm >> np.maximum(-be, 0))


def _compare(g: QGraph, x: np.ndarray, n_steps: int, threads: int, record: bool = True,
             counters: bool = True) -> tuple:
    got = event.run(g, x, n_steps, record_state=record, threads=threads)
    plan = event.PLANS.get(g)
    ref = torch_int.run(g, x.astype(np.int64), n_steps,
                        record_state=True)
    fields = ("spikes", "u", "v") if record else ("spikes",)
    for field in fields:
        np.testing.assert_array_equal(getattr(got, field)["l"], getattr(ref, field)["l"],
                                      err_msg=f"{field}, formats {g.formats}")
    if counters:
        want = expected_counters(g, x, n_steps, ref)
        for c in COUNTERS:
            np.testing.assert_array_equal(np.asarray(getattr(got, c)["l"]), want[c],
                                          err_msg=c)
    return plan, got, ref


def _family(seed: int, n_cases: int, narrowish: bool, decays_p: float,
            reset: bool = False) -> dict:
    rng = np.random.default_rng(seed)
    seen = {"int32": 0, "int64": 0, "int32 packed": 0, "int64 packed": 0, "int64 sums": 0,
            "spiking": 0}
    for _ in range(n_cases):
        f = random_formats(rng, narrowish)
        interval = int(rng.integers(1, 5)) if reset else 0
        g, x = random_conv_lif(rng, f, rng.random() < decays_p, interval)
        n_steps = int(rng.integers(1, x.shape[0] + 4))
        threads = int(rng.integers(1, 4))
        plan, got, _ = _compare(g, x, n_steps, threads, record=bool(rng.random() < 0.8))
        assert plan.fused == {"l": "c"}
        L = plan.lifs[0]
        f_ = g.formats
        narrow = lif_k.lif_narrow(L.consts, f_.u_overflow == "saturate",
                              f_.v_overflow == "saturate", int(np.abs(L.bias).max()))
        assert (L.state_dtype == np.int32) == narrow
        seen["int32" if narrow else "int64"] += 1
        seen["spiking"] += int(got.spikes["l"].sum() > 0)
        width = "int32" if narrow else "int64"
        for fr in x[:n_steps - 1].reshape(-1, *x.shape[2:]):
            m = sum_mode(g, fr)
            m = "int64 sums" if m == "int64" else m
            seen[m] += 1
            seen[f"{width} state, {m}"] = seen.get(f"{width} state, {m}", 0) + 1
        event.PLANS.clear()
    return seen


def test_random_fused_conv_lif_in_narrow_formats_agrees_with_torch_int():
    seen = _family(61, 250, narrowish=True, decays_p=0.15)
    # the family reaches both state widths, each in every sum mode, spiking layers
    assert seen["int32"] >= 80 and seen["int64"] >= 80, seen
    for width in ("int32", "int64"):
        for m in ("int32 packed", "int64 packed", "int64 sums"):
            assert seen.get(f"{width} state, {m}", 0) >= 50, seen
    assert seen["spiking"] >= 100, seen


def test_random_fused_conv_lif_in_any_formats_agrees_with_torch_int():
    seen = _family(62, 120, narrowish=False, decays_p=0.4)
    assert seen["int64"] >= 100, seen


def test_random_fused_conv_lif_with_periodic_resets_agrees_with_torch_int():
    seen = _family(63, 100, narrowish=True, decays_p=0.1, reset=True)
    assert seen["int32"] >= 35, seen


def _largest_accepted_bias(lc: tuple[int, ...], u_sat: bool, v_sat: bool) -> int:
    """The largest bias magnitude ``lif_narrow`` accepts for ``lc`` (bisection), -1 if
    none."""
    if not lif_k.lif_narrow(lc, u_sat, v_sat, 0):
        return -1
    lo, hi = 0, 1 << 32
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if lif_k.lif_narrow(lc, u_sat, v_sat, mid) else (lo, mid)
    return lo


def test_fused_conv_lif_at_the_edge_of_the_int32_bound_agrees_with_torch_int():
    """Graphs whose biases sit at the largest magnitude ``lif_narrow`` accepts (and one
    step past it, int64), with the conv's activations driven to +-2^23 by graded inputs and
    a large weight exponent: int32 state gives torch-int's results at the bound's edge."""
    rng = np.random.default_rng(65)
    widths = {np.dtype(np.int32): 0, np.dtype(np.int64): 0}
    for case in range(80):
        f = dataclasses.replace(
            random_formats(rng, narrowish=True), bias_mant_bits=16, bias_exp_min=0,
            bias_exp_max=20, weight_mantissa_bits=8, weight_range_mixed=(-256, 255),
            weight_range_excitatory=(0, 255), weight_range_inhibitory=(-255, 0))
        g, x = random_conv_lif(rng, f, decays=False)
        node = g.nodes["l"]
        lc = event.PLANS.get(g).lifs[0].consts
        bmax = _largest_accepted_bias(lc, f.u_overflow == "saturate",
                                      f.v_overflow == "saturate")
        if bmax < 1:
            event.PLANS.clear()
            continue
        # bmax as mant << exp with a 16-bit mantissa: the largest such value <= bmax, or
        # (odd cases) the smallest one past it
        past = case % 2 == 1
        target = bmax + 1 if past else bmax
        e = max(target.bit_length() - 15, 0)
        mant = -(-target >> e) if past else target >> e
        if mant >= 1 << 15:
            e += 1
            mant = -(-target >> e)
        assert (mant << e > bmax) == past
        signs = rng.choice([-1, 1], node.shape)
        exps = np.full(node.shape, e)
        mants = signs * mant
        mants.flat[0] = mant  # one at +max, one at -max at least
        mants.flat[-1] = -mant
        wt = np.where(rng.random(g.nodes["c"].weight.shape) < 0.5, 254, -254)
        nodes = dict(g.nodes)
        nodes["c"] = dataclasses.replace(g.nodes["c"], weight=wt, weight_exp=20)
        nodes["in"] = dataclasses.replace(g.nodes["in"], message_bits=16)
        nodes["l"] = dataclasses.replace(node, bias_mant=mants, bias_exp=exps)
        g = QGraph(nodes, list(g.edges), g.dt, g.target, g.num_steps, formats=f).validate()
        x = rng.integers(0, 1 << 16, x.shape) * (rng.random(x.shape) < 0.5)
        plan, _, ref = _compare(g, x, x.shape[0] + 3, int(rng.integers(1, 4)))
        widths[plan.lifs[0].state_dtype] += 1
        assert (plan.lifs[0].state_dtype == np.int32) == (not past)
        event.PLANS.clear()
    assert min(widths.values()) >= 15, widths


def test_random_family_catches_int32_state_forced_where_the_bound_fails(monkeypatch):
    """The random comparisons are not vacuous: with ``lif_narrow`` forced to say yes, int32
    state for LIFs that need int64 leaves torch-int's results within a few cases."""
    monkeypatch.setattr(lif_k, "lif_narrow", lambda *a: True)
    event.PLANS.clear()
    with pytest.raises(AssertionError):
        _family(61, 250, narrowish=True, decays_p=0.15)
    event.PLANS.clear()


def test_random_fused_conv_lif_in_loihi_formats_matches_the_numpy_reference():
    """Loihi's formats (graded inputs allowed): the event simulator against test_event's
    plain numpy reference, counters included, int32 and int64 state."""
    rng = np.random.default_rng(66)
    f = dataclasses.replace(LOIHI_FORMATS, max_message_bits=24)
    widths = {np.dtype(np.int32): 0, np.dtype(np.int64): 0}
    for _ in range(40):
        g, x = random_conv_lif(rng, f, decays=rng.random() < 0.3)
        widths[event.PLANS.get(g).lifs[0].state_dtype] += 1
        assert_matches_reference(g, x, int(rng.integers(1, x.shape[0] + 3)))
        event.PLANS.clear()
    assert min(widths.values()) >= 8, widths


def test_fused_conv_lif_at_the_widest_formats_matches_a_python_reference():
    """u_bits / v_bits up to 62 - decay_bits (beyond torch-int's headroom check) and
    activation shifts 10..16: the event simulator against test_format_semantics' plain
    Python LIF step on the conv's values from test_event's numpy conv."""
    rng = np.random.default_rng(11)
    checked = 0
    for _ in range(30):
        db = int(rng.integers(1, 4))
        f = dataclasses.replace(random_formats(rng, False), decay_bits=db,
                                u_bits=int(rng.integers(56, 63 - db)),
                                v_bits=int(rng.integers(56, 63 - db)),
                                activation_shift=int(rng.integers(10, 17)))
        g, x = random_conv_lif(rng, f, rng.random() < 0.6)
        n_steps = x.shape[0] + 2
        r = event.run(g, x, n_steps, record_state=True, threads=1)
        node = g.nodes["l"]
        bias = floor_bias(node).ravel()
        got = [r.u["l"], r.v["l"], r.spikes["l"]]
        for b in range(x.shape[1]):
            u, v = [0] * bias.size, [0] * bias.size
            for n in range(n_steps):
                a = (ref_apply(g, "c", x[n - 1, b].astype(np.int64))[0].ravel()
                     if 1 <= n <= x.shape[0] else np.zeros(bias.size, np.int64))
                for i in range(bias.size):
                    u[i], v[i], spk = ref_lif(u[i], v[i], int(a[i]), node.du, node.dv,
                                              int(bias[i]), node.vth, f)
                    assert (u[i], v[i], spk) == tuple(int(t[n, b].ravel()[i]) for t in got), \
                        (f, node.du, node.dv, node.vth, n, b, i)
                    checked += 1
        event.PLANS.clear()
    assert checked > 5000, checked


def test_counter_check_catches_a_wrong_counter():
    """The derived counters are not vacuous: one synop more is caught."""
    rng = np.random.default_rng(5)
    g, x = random_conv_lif(rng, random_formats(rng, True), False)
    x[0] = 1  # events in every position of the first frame
    got = event.run(g, x, 4, record_state=True, threads=1)
    ref = torch_int.run(g, x.astype(np.int64), 4, record_state=True)
    want = expected_counters(g, x, 4, ref)
    np.testing.assert_array_equal(got.synops["l"], want["synops"])
    want["synops"][1] += 1
    with pytest.raises(AssertionError):
        np.testing.assert_array_equal(got.synops["l"], want["synops"])
    event.PLANS.clear()


# ---- the LIF step alone: int32 vs int64 kernels where lif_narrow holds ------------------

def _adversarial_activations(rng: np.random.Generator, steps: int, n: int) -> np.ndarray:
    """wrap24 activations ``[steps, 1, n]``: runs of the extremes +-2^23 (v piles up to its
    bound), alternations, zeros and random values."""
    lo, hi = -(1 << 23), (1 << 23) - 1
    a = np.empty((steps, 1, n), np.int64)
    for i in range(n):
        kind = i % 6
        if kind == 0:
            a[:, 0, i] = hi
        elif kind == 1:
            a[:, 0, i] = lo
        elif kind == 2:
            a[:, 0, i] = np.where(np.arange(steps) % 2, hi, lo)
        elif kind == 3:
            a[:, 0, i] = rng.choice([lo, hi, 0, 1, -1], steps)
        elif kind == 4:
            a[:, 0, i] = rng.integers(lo, hi + 1, steps)
        else:
            a[:, 0, i] = np.where(np.arange(steps) < steps // 2, hi, lo)
    return a


def test_int32_lif_step_equals_int64_wherever_lif_narrow_holds():
    """Random LIF constants (formats and parameters), kept where ``lif_narrow`` accepts
    them, with the bias at its accepted extreme: the int32 kernel's u, v and spikes equal
    the int64 kernel's (and a plain-Python step's) on adversarial activations."""
    rng = np.random.default_rng(64)
    accepted = 0
    tight = 0
    for _ in range(4000):
        sh = int(rng.integers(0, 9))
        ub, vb = int(rng.integers(2, 31)), int(rng.integers(2, 31))
        db = int(rng.integers(1, 21))
        u_sat, v_sat = bool(rng.integers(0, 2)), bool(rng.integers(0, 2))
        ge, sub = bool(rng.integers(0, 2)), bool(rng.integers(0, 2))
        vth = int(rng.choice([0, 1, int(rng.integers(0, 1 << 24))]))
        lc = lif_k.lif_consts((1 << db) - 1, 0, vth, sh, db, ub, vb, ge, sub)
        # the largest bias the bound accepts (bisection), else none
        if not lif_k.lif_narrow(lc, u_sat, v_sat, 0):
            continue
        lo_b, hi_b = 0, 1 << 32
        while hi_b - lo_b > 1:
            mid = (lo_b + hi_b) // 2
            lo_b, hi_b = (mid, hi_b) if lif_k.lif_narrow(lc, u_sat, v_sat, mid) else (lo_b, mid)
        bmax = lo_b
        accepted += 1
        tight += bmax > 0
        n = 12
        bias = np.array([bmax, -bmax, 0, bmax, -bmax, rng.integers(-bmax, bmax + 1)] * 2,
                        np.int64)
        a = _adversarial_activations(rng, 40, n)
        cnt = np.zeros((1, n), np.int64)
        kern = lif_k.lif_kernels(u_sat, v_sat, False)
        states = {}
        for dt in (np.int32, np.int64):
            u = np.zeros((1, n), dt)
            v = np.zeros((1, n), dt)
            b = bias.astype(dt)
            us, vs, ss = [], [], []
            for t in range(a.shape[0]):
                spk = np.zeros((1, n), np.uint8)
                kern.step(a[t], cnt, u, v, b, spk, lc, np.zeros((1, 3), np.int64))
                us.append(u.astype(np.int64).copy())
                vs.append(v.astype(np.int64).copy())
                ss.append(spk.copy())
            states[dt] = (np.array(us), np.array(vs), np.array(ss))
        for k, name in enumerate(("u", "v", "spikes")):
            np.testing.assert_array_equal(states[np.int32][k], states[np.int64][k],
                                          err_msg=f"{name}: lc={lc} u_sat={u_sat} "
                                                  f"v_sat={v_sat} bias={bmax}")
        # the int64 kernel against plain Python on the first neurons
        u_hi, v_hi, th = lc[5], lc[6], lc[7]
        for i in range(4):
            uu = vv = 0
            for t in range(a.shape[0]):
                uu = int(a[t, 0, i]) << sh
                uu = (min(max(uu, 1 - u_hi), u_hi - 1) if u_sat else
                      uu - 2 * u_hi * (uu > u_hi) + 2 * u_hi * (uu <= -u_hi))
                vv = vv + uu + int(bias[i])
                vv = (min(max(vv, 1 - v_hi), v_hi - 1) if v_sat else
                      vv - 2 * v_hi * (vv > v_hi) + 2 * v_hi * (vv <= -v_hi))
                s = vv >= th if ge else vv > th
                if s:
                    vv = vv - th if sub else 0
                assert (uu, vv, int(s)) == (states[np.int64][0][t, 0, i],
                                            states[np.int64][1][t, 0, i],
                                            states[np.int64][2][t, 0, i]), (lc, i, t)
    assert accepted >= 300 and tight >= 200, (accepted, tight)


def test_int32_step_check_catches_a_bound_that_is_too_loose():
    """The comparison above fails where int32 cannot hold the step: a wrapping 30-bit v
    fed u near 2^30 and a bias of 2^30 (the bound says no)."""
    lc = lif_k.lif_consts(4095, 0, 1 << 23, 7, 12, 24, 30, False, False)  # th 2^30: no spike
    assert not lif_k.lif_narrow(lc, False, False, 1 << 30)
    a = np.full((1, 4), (1 << 23) - 1, np.int64)
    kern = lif_k.lif_kernels(False, False, False)
    res = []
    for dt in (np.int32, np.int64):
        u, v = np.zeros((1, 4), dt), np.zeros((1, 4), dt)
        b = np.full(4, 1 << 30, dt)
        for _ in range(6):
            kern.step(a, np.zeros((1, 4), np.int64), u, v, b, np.zeros((1, 4), np.uint8), lc,
                      np.zeros((1, 3), np.int64))
        res.append(v.astype(np.int64))
    assert not np.array_equal(res[0], res[1])


# ---- lif_narrow: only fused LIFs, and a plan re-prepared after a change in place --------


def _narrow_graph(variant: str = "conv alone") -> QGraph:
    """in -> conv -> LIF (no decay, Loihi's arithmetic: int32 state when fused), or a
    variant where the LIF is not fed by the conv alone."""
    w = np.random.default_rng(2).integers(-100, 100, (2, 2, 3, 3)) * 2
    conv = ConvNode("c", w, (2, 5, 5), padding=(1, 1), weight_exp=3,
                    delay=2 if variant == "conv with a delay" else 0)
    shape = conv.out_shape
    n = int(np.prod(shape))
    z = np.zeros(shape, np.int64)
    neuron = LIFNode("l", shape, du=4095, dv=0, vth=50, bias_mant=z + 7, bias_exp=z.copy())
    nodes = [InputNode("in", (2, 5, 5), message_bits=8), conv, neuron]
    edges = [("in", "c"), ("c", "l")]
    if variant == "recurrent dense too":  # a second path into l
        nodes.append(DenseNode("r", np.eye(n, dtype=np.int64) * 254, num_weight_bits=8))
        edges += [("l", "r"), ("r", "l")]
    elif variant == "two convs":
        nodes.insert(2, ConvNode("c2", w[::-1].copy(), (2, 5, 5), padding=(1, 1)))
        edges += [("in", "c2"), ("c2", "l")]
    elif variant == "conv read twice":  # the conv's output also feeds another LIF
        nodes.append(LIFNode("l2", shape, du=4095, dv=0, vth=50, bias_mant=z.copy(),
                             bias_exp=z.copy()))
        edges.append(("c", "l2"))
    elif variant == "conv then pool":
        pool = SumPoolNode("p", shape, (1, 1), (1, 1))
        nodes[2] = dataclasses.replace(neuron, shape=pool.out_shape)
        nodes.insert(2, pool)
        edges = [("in", "c"), ("c", "p"), ("p", "l")]
    d = {n.name: n for n in nodes}
    d["out"] = OutputNode("out", shape)
    # Loihi's arithmetic; graded inputs, delays, wider bias exponents and thresholds allowed
    f = dataclasses.replace(LOIHI_FORMATS, max_message_bits=24, bias_exp_max=20,
                            threshold_bits=26, max_synaptic_delay=4)
    return QGraph(d, [*edges, ("l", "out")], 1e-3, "loihi2", 6, formats=f).validate()


@pytest.mark.parametrize("variant", ["recurrent dense too", "two convs", "conv read twice",
                                     "conv then pool", "conv with a delay"])
def test_only_a_lif_fed_by_a_conv_alone_gets_int32_state(variant):
    assert event.PLANS.get(_narrow_graph()).lifs[0].state_dtype == np.int32
    g = _narrow_graph(variant)
    plan = event.PLANS.get(g)
    assert "l" not in plan.fused
    assert all(L.state_dtype == np.int64 for L in plan.lifs)
    x = np.random.default_rng(4).integers(0, 256, (8, 3, 2, 5, 5))
    got = event.run(g, x, 12, record_state=True, threads=2)
    ref = torch_int.run(g, x, 12, record_state=True)
    for field in ("spikes", "u", "v"):
        np.testing.assert_array_equal(getattr(got, field)["l"], getattr(ref, field)["l"],
                                      err_msg=field)
    event.PLANS.clear()


@pytest.mark.parametrize("change", ["bias in place", "du replaced", "formats widened",
                                    "vth replaced"])
def test_a_plan_is_re_prepared_when_the_graph_changes_in_place(change):
    g = _narrow_graph()
    x = np.random.default_rng(5).integers(0, 256, (8, 3, 2, 5, 5))
    plan, _, _ = _compare(g, x, 10, 1)
    assert plan.lifs[0].state_dtype == np.int32
    node = g.nodes["l"]
    if change == "bias in place":  # a bias of 2^32 - 2^20: past what int32 state admits
        node.bias_mant[...] = 4095
        node.bias_exp[...] = 20
        dt = np.int64
    elif change == "du replaced":  # decay products: int64
        g.nodes["l"] = dataclasses.replace(node, du=100, dv=300)
        dt = np.int64
    elif change == "formats widened":  # a wrapping 30-bit v: int64
        g.formats = dataclasses.replace(g.formats, v_overflow="wrap", v_bits=30)
        dt = np.int64
    else:  # a threshold of (2^25 - 1) << 6, about 2^31: int64
        g.nodes["l"] = dataclasses.replace(node, vth=(1 << 25) - 1)
        dt = np.int64
    g.validate()
    plan2, _, _ = _compare(g, x, 10, 3)
    assert plan2 is not plan and plan2.lifs[0].state_dtype == dt
    event.PLANS.clear()


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("batch", [1, 3, 7])
def test_int32_state_with_threads_odd_batches_and_record_state_off(threads, batch):
    g = _narrow_graph()
    x = np.random.default_rng(threads * 10 + batch).integers(0, 256, (6, batch, 2, 5, 5))
    plan, on, _ = _compare(g, x, 9, threads)
    assert plan.lifs[0].state_dtype == np.int32
    off = event.run(g, x, 9, record_state=False, threads=threads)
    np.testing.assert_array_equal(off.spikes["l"], on.spikes["l"])
    for c in COUNTERS:
        np.testing.assert_array_equal(np.asarray(getattr(off, c)["l"]),
                                      np.asarray(getattr(on, c)["l"]), c)
    event.PLANS.clear()
