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
