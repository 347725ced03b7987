"""netx reading and mapping: the real lava-dl files map block by block with their integers
unchanged, and every malformed or unsupported file is refused in one line naming the layer."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from snn2hw.netx import NetxError, netx_to_qgraph, read_netx
from snn2hw.netx.reader import describe_file, hdf5_kind
from snn2hw.netx.to_qgraph import dense_weight_bits


def _dense_net(path, neuron=None, weight=None, delay=None, layer_type="dense", extra=None):
    """A one-block netx file written the way SLAYER's export_hdf5 writes a Dense block."""
    w = np.arange(-6, 6, dtype=np.float32).reshape(3, 4) * 2 if weight is None else weight
    nrn = {"type": np.bytes_("CUBA"), "iDecay": 4096, "vDecay": 128, "vThMant": 10,
           "refDelay": 1, "gradedSpike": False}
    nrn.update(neuron or {})
    with h5py.File(path, "w") as h:
        g = h.create_group("layer/0")
        g.create_dataset("type", data=np.array([np.bytes_(layer_type)]))
        g.create_dataset("shape", data=np.array([w.shape[0]]))
        g.create_dataset("weight", data=w)
        if delay is not None:
            g.create_dataset("delay", data=delay)
        n = g.create_group("neuron")
        for k, v in nrn.items():
            if v is not None:
                n.create_dataset(k, data=v)
        for k, v in (extra or {}).items():
            g.create_dataset(k, data=v)
    return path


def test_oxford_maps_to_two_dense_lif_layers_with_netx_integers(external):
    g = netx_to_qgraph(read_netx(external / "lava-dl-netx/oxford/Trained_network.net")).graph
    kinds = [n.kind for n in g.nodes.values()]
    assert kinds == ["input", "dense", "lif", "dense", "lif", "output"]
    lif0 = g.nodes["lif0"]
    assert (lif0.du, lif0.dv, lif0.vth) == (4095, 415, 6)  # iDecay 4096 - 1, vDecay, vThMant
    with h5py.File(external / "lava-dl-netx/oxford/Trained_network.net") as h:
        w1 = h["layer/1/weight"][()].astype(np.int64)
    d1 = g.nodes["dense1"]
    # netx's optimize_weight_bits: w << s with weight_exp = -s, so Lava computes w @ x exactly
    assert np.array_equal(d1.weight, w1 << -d1.weight_exp)
    assert g.input_node.message_bits == 0


def test_tinynet_input_block_is_driven_through_its_current_input(external):
    res = netx_to_qgraph(read_netx(external / "lava-dl-netx/tinynet/tiny.net"))
    g = res.graph
    assert [n.kind for n in g.nodes.values()] == [
        "input", "conv", "lif", "conv", "lif", "conv", "lif", "output"]
    assert g.input_node.shape == (3, 16, 16) and g.input_node.message_bits == 8
    assert g.nodes["conv1"].stride == (2, 2) and g.nodes["lif2"].shape == (36, 1, 1)
    assert int(g.nodes["lif1"].bias_exp.max()) == 6  # netx's fixed bias exponent
    assert any("transform weight 36" in n for n in res.notes)  # recorded, not dropped


def test_dense_weight_bits_reproduce_the_stored_product():
    rng = np.random.default_rng(0)
    for w in (rng.integers(-60, 61, (5, 7)) * 2, rng.integers(0, 40, (5, 7)),
              -rng.integers(1, 200, (5, 7)), np.array([[4, -8], [12, 0]])):
        w2, nwb, exp = dense_weight_bits(w, "t")
        assert np.array_equal(w2 >> -exp, w) and 1 <= nwb <= 8
        assert w2.max() <= 255 and w2.min() >= -256


def test_weights_lava_would_store_differently_are_named_in_a_note(tmp_path):
    # no positive weight: netx scales as mixed (to -256), Lava's Dense clips as inhibitory
    p = _dense_net(tmp_path / "inh.net", weight=np.array([[-4, 0], [-8, -2]], np.float32))
    res = netx_to_qgraph(read_netx(p))
    assert any("Lava's Dense stores 1 of 4 weights differently" in n for n in res.notes)
    ok = netx_to_qgraph(read_netx(_dense_net(tmp_path / "ok.net")))
    assert not any("differently" in n for n in ok.notes)


def test_delays_map_per_synapse_and_axonal_delays_per_row(tmp_path):
    p = _dense_net(tmp_path / "d.net", delay=np.array([0, 2, 5]))
    from snn2hw.quant.formats import NumberFormats

    loihi2 = NumberFormats(max_message_bits=32, max_synaptic_delay=63)
    g = netx_to_qgraph(read_netx(p), target="loihi2", formats=loihi2).graph
    assert np.array_equal(g.nodes["dense0"].delay, np.repeat([[0], [2], [5]], 4, axis=1))
    with pytest.raises(NetxError, match="delay 5 exceeds"):
        netx_to_qgraph(read_netx(p))  # Loihi 1 has no synaptic delays


@pytest.mark.parametrize("neuron, needle", [
    ({"refDelay": 3}, "refDelay 3: a refractory period"),
    ({"gradedSpike": True}, "gradedSpike"),
    ({"type": np.bytes_("SDNN")}, "sigma-delta"),
    ({"type": np.bytes_("RF_PHASE")}, "resonate-and-fire"),
    ({"vThStep": 4}, "adaptive threshold"),
    ({"vDecay": 4096}, "vDecay 4096"),
])
def test_neurons_snn2hw_cannot_run_exactly_are_refused_with_layer_and_reason(
        tmp_path, neuron, needle):
    p = _dense_net(tmp_path / "n.net", neuron=neuron)
    with pytest.raises(NetxError) as err:
        netx_to_qgraph(read_netx(p))
    msg = str(err.value)
    assert needle in msg and "layer 0 ('dense')" in msg and "\n" not in msg


def test_a_recurrent_dense_block_is_refused_naming_what_it_needs(tmp_path):
    p = _dense_net(tmp_path / "r.net", layer_type="dense_rec")
    with pytest.raises(NetxError, match=r"layer 0 \('dense_rec'\) is not supported: it would "
                                        "need recurrent"):
        netx_to_qgraph(read_netx(p))


def test_an_unknown_block_type_is_refused_in_one_line(tmp_path):
    p = _dense_net(tmp_path / "u.net", layer_type="wormhole")
    with pytest.raises(NetxError) as err:
        read_netx(p)
    assert "layer 0 has unknown block type 'wormhole'" in str(err.value)
    assert "\n" not in str(err.value)


def test_a_truncated_file_is_refused_in_one_line(external, tmp_path):
    data = (external / "lava-dl-netx/oxford/Trained_network.net").read_bytes()
    p = tmp_path / "cut.net"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(NetxError) as err:
        read_netx(p)
    assert "truncated or damaged" in str(err.value) and "\n" not in str(err.value)


def test_non_integer_weights_and_oversized_files_are_refused(tmp_path, monkeypatch):
    p = _dense_net(tmp_path / "f.net", weight=np.full((2, 2), 0.5, np.float32))
    with pytest.raises(NetxError, match="non-integer"):
        netx_to_qgraph(read_netx(p))
    p = _dense_net(tmp_path / "big.net")
    monkeypatch.setenv("SNN2HW_MAX_NETX_BYTES", "16")
    with pytest.raises(NetxError, match="over the 0 MiB limit"):
        read_netx(p)


def test_files_are_named_by_content(external, tmp_path):
    net = external / "lava-dl-netx/mnist/trained_mnist_network.net"
    assert hdf5_kind(net) == "netx"
    assert hdf5_kind(external / "nir-paper/01_lif/lif_norse.nir") == "nir"
    assert describe_file(net).startswith("a lava-dl netx network")
    (tmp_path / "t.txt").write_text("hello")
    assert hdf5_kind(tmp_path / "t.txt") is None
    with pytest.raises(NetxError, match="is not a model file snn2hw knows"):
        read_netx(tmp_path / "t.txt")
