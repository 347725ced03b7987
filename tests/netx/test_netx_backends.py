"""lava-dl's netx networks on snn2hw's integer backends, against lava-dl's own netx on Lava.

The reference is lava-dl 0.6.0's ``netx.hdf5.Network`` run on Lava's fixed-point models
(``lavadl_reference.py``); those tests skip when lava-dl is not installed
(``pip install --no-deps --ignore-requires-python lava-dl==0.6.0``).
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from snn2hw.backends import event, torch_int
from snn2hw.netx import netx_to_qgraph, read_netx
from snn2hw.netx.encoding import events_to_frames

OXFORD_STEPS = 600  # of the tutorial's 2000: keeps the Lava runs to seconds


def _lavadl():
    try:
        import lavadl_reference

        lavadl_reference.import_netx()
    except ImportError as exc:
        pytest.skip(f"lava-dl's netx is not importable ({exc}); pip install --no-deps "
                    "--ignore-requires-python lava-dl==0.6.0")
    return lavadl_reference


def _lava():
    from snn2hw.compat.lava_py311 import lava_available

    if not lava_available():
        pytest.skip("lava-nc is not installed (scripts/setup_env.sh installs it)")
    from snn2hw.backends import lava

    return lava


def _tiny_frames(external, steps):
    bias = np.load(external / "lava-dl-netx/tinynet/gts_tinynet_input_bias.npy")
    chw = bias.transpose(2, 1, 0).astype(np.int64)  # netx's W, H, C -> C, H, W
    return bias, np.broadcast_to(chw, (steps, 1, *chw.shape)).copy()


def _oxford_frames(external):
    ev = np.load(external / "lava-dl-netx/oxford/input.npy")
    return events_to_frames(ev, 200, OXFORD_STEPS)


def test_tinynet_runs_identically_on_torch_int_event_and_lava(external):
    g = netx_to_qgraph(read_netx(external / "lava-dl-netx/tinynet/tiny.net")).graph
    _, x = _tiny_frames(external, 17)
    runs = [m.run(g, x, num_steps=20) for m in (torch_int, event, _lava())]
    for r in runs[1:]:
        for name in ("lif0", "lif1", "lif2"):
            assert np.array_equal(r.spikes[name], runs[0].spikes[name]), name
    assert runs[0].spikes["lif2"].sum() > 50  # the output layer is active


def test_tinynet_without_biases_is_lava_dl_netx_one_step_later(external, tmp_path):
    """The input block's neuron is driven through a synapse here (one hop), in lava-dl's
    test through its bias (no hop): the whole network runs one step later. With the conv
    biases zeroed that is the only difference, exactly."""
    ref = _lavadl()
    src = external / "lava-dl-netx/tinynet/tiny.net"
    path = tmp_path / "tiny_nobias.net"
    path.write_bytes(src.read_bytes())
    with h5py.File(path, "r+") as h:
        for i in (1, 2):
            h[f"layer/{i}/bias"][...] = 0
    bias, x = _tiny_frames(external, 20)
    lavadl = ref.run_netx(str(path), 19, input_bias=bias)[:, 0, 0, :]  # (T, 36)
    g = netx_to_qgraph(read_netx(path)).graph
    ours = torch_int.run(g, x, num_steps=20).spikes["lif2"][:, 0, :, 0, 0]
    assert lavadl.sum() > 20
    assert np.array_equal(ours[1:], lavadl)
    broken = ours.copy()
    broken[5, 0] ^= 1  # one flipped spike is seen
    assert not np.array_equal(broken[1:], lavadl)


def test_lava_dl_test_harness_reproduces_the_tinynet_ground_truth(external):
    """lava-dl's own tinynet test (per-layer resets of u and v, interval 17, offset i - 1)
    gives zero error against gts_tinynet_output: the reference runner is lava-dl's netx."""
    ref = _lavadl()
    bias, _ = _tiny_frames(external, 1)
    out = ref.run_netx(str(external / "lava-dl-netx/tinynet/tiny.net"), 20, input_bias=bias,
                       layer_reset=17)[:, 0, 0, :]
    gt = np.load(external / "lava-dl-netx/tinynet/gts_tinynet_output.npy")[0, :, 0, 0, :]
    assert np.abs(out[2:17].T - gt[:, 1:]).sum() == 0


TINY_RESET = 17  # lava-dl's tinynet test: Reset(interval=17, offset=i - 1) of layer i


def _tinynet_mismatches(out: np.ndarray, gt: np.ndarray) -> int:
    """(step, neuron) bins where our output layer ``[T, 36]`` differs from
    ``gts_tinynet_output`` columns 1..15: lava-dl's harness compares its steps 2..16 with
    them; ours run one step later (the input block's neuron is one synapse hop away)."""
    return int(np.abs(out[3:18].T.astype(np.int64) - gt[:, 1:]).sum())


@pytest.mark.parametrize("backend", ["torch-int", "event", "lava"])
def test_tinynet_with_netx_resets_equals_lava_dl_ground_truth_exactly(external, backend):
    """netx's Network(reset_interval=17, reset_offset=0) is lava-dl's test harness (layer i
    reset before its step i); mapped to each LIF's periodic reset, shifted one step."""
    mod = {"torch-int": torch_int, "event": event}.get(backend) or _lava()
    res = netx_to_qgraph(read_netx(external / "lava-dl-netx/tinynet/tiny.net"),
                         reset_interval=TINY_RESET, reset_offset=0)
    g = res.graph
    assert [(n.reset_interval, n.reset_offset) for n in g.lif_nodes] == [(17, 1), (17, 2),
                                                                         (17, 3)]
    _, x = _tiny_frames(external, 20)
    out = mod.run(g, x, num_steps=20).spikes["lif2"][:, 0, :, 0, 0]
    gt = np.load(external / "lava-dl-netx/tinynet/gts_tinynet_output.npy")[0, :, 0, 0, :]
    assert gt[:, 1:].sum() > 50
    assert _tinynet_mismatches(out, gt) == 0


def test_tinynet_ground_truth_check_sees_a_wrong_reset_phase(external):
    """Fault injection: without the one-step hop shift (netx's offsets taken literally),
    with reset_offset 1, or without resets, the event backend misses the ground truth."""
    net = read_netx(external / "lava-dl-netx/tinynet/tiny.net")
    gt = np.load(external / "lava-dl-netx/tinynet/gts_tinynet_output.npy")[0, :, 0, 0, :]
    _, x = _tiny_frames(external, 20)

    def mismatches(g):
        return _tinynet_mismatches(event.run(g, x, num_steps=20).spikes["lif2"][:, 0, :, 0, 0],
                                   gt)

    unshifted = netx_to_qgraph(net, reset_interval=TINY_RESET).graph
    for j, node in enumerate(unshifted.lif_nodes):
        node.reset_offset = j  # netx's own phase, without the hop
    assert mismatches(unshifted) > 0
    assert mismatches(netx_to_qgraph(net, reset_interval=TINY_RESET, reset_offset=1).graph) > 0
    assert mismatches(netx_to_qgraph(net).graph) > 0


def test_lava_dl_netx_reset_options_reproduce_the_tinynet_ground_truth(external):
    """netx's own Network(reset_interval=17, reset_offset=0) equals the test harness's
    per-layer resets: 0 errors against gts_tinynet_output, what the export option mirrors."""
    ref = _lavadl()
    bias, _ = _tiny_frames(external, 1)
    path = str(external / "lava-dl-netx/tinynet/tiny.net")
    gt = np.load(external / "lava-dl-netx/tinynet/gts_tinynet_output.npy")[0, :, 0, 0, :]
    out = ref.run_netx(path, 20, input_bias=bias, network_reset=(TINY_RESET, 0))[:, 0, 0, :]
    assert np.abs(out[2:17].T - gt[:, 1:]).sum() == 0
    off = ref.run_netx(path, 20, input_bias=bias, network_reset=(TINY_RESET, 1))[:, 0, 0, :]
    assert np.abs(off[2:17].T - gt[:, 1:]).sum() > 0  # the phase matters


def test_netx_reset_offsets_follow_netx_create_blocks():
    """netx: layer j gets LIFReset offset K + 1 + j (1-based Lava time), i.e. 0-based step
    K + j; one step later here behind an input block's hop."""
    from snn2hw.netx.to_qgraph import netx_reset_offsets

    assert netx_reset_offsets(3, 17, 0, has_input_block=True) == [1, 2, 3]
    assert netx_reset_offsets(3, 17, 0, has_input_block=False) == [0, 1, 2]
    assert netx_reset_offsets(4, 3, 1, has_input_block=True) == [2, 0, 1, 2]


def test_netx_reset_options_are_checked(external):
    from snn2hw.netx import NetxError

    net = read_netx(external / "lava-dl-netx/tinynet/tiny.net")
    with pytest.raises(NetxError, match=r"tiny\.net: a netx reset offset \(2\) needs"):
        netx_to_qgraph(net, reset_offset=2)
    with pytest.raises(NetxError, match="interval >= 1"):
        netx_to_qgraph(net, reset_interval=0)


def test_oxford_equals_lava_dl_netx_on_lava_on_all_three_integer_backends(external):
    ref = _lavadl()
    path = external / "lava-dl-netx/oxford/Trained_network.net"
    frames = _oxford_frames(external)  # [T, 200]
    lavadl = ref.run_netx(str(path), OXFORD_STEPS, input_frames=frames.T)[:, :]
    g = netx_to_qgraph(read_netx(path), num_steps=OXFORD_STEPS).graph
    x = frames[:, None, :]
    for backend in (torch_int, event, _lava()):
        ours = backend.run(g, x, num_steps=OXFORD_STEPS).spikes["lif1"][:, 0]
        assert np.array_equal(ours, lavadl), backend.__name__
    assert lavadl.sum() > 1000
    # the comparison sees a wrong mapping: du without netx's "- 1", or the weights of the
    # dense block with exponent -1 used without their shift
    for fault in ("du", "weight_exp"):
        bad = netx_to_qgraph(read_netx(path), num_steps=OXFORD_STEPS).graph
        if fault == "du":
            bad.nodes["lif0"].du -= 1
        else:
            assert bad.nodes["dense1"].weight_exp == -1
            bad.nodes["dense1"].weight_exp = 0
        out = torch_int.run(bad, x, num_steps=OXFORD_STEPS).spikes["lif1"][:, 0]
        assert not np.array_equal(out, lavadl), fault
