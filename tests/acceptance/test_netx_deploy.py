"""Acceptance: lava-dl netx files through the CLI (export, simulate, compare, energy,
report, ONNX), and files with the wrong extension named by what they are."""

from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner

from snn2hw.cli import main
from snn2hw.netx.encoding import rate_frames

MNIST_STEPS = 32  # the lava-dl MNIST tutorial's presentation time


def _one_line_error(r) -> str:
    assert r.exit_code != 0, r.output
    assert r.output.startswith("error: ") and r.output.count("\n") == 1, r.output
    return r.output


def _mnist_inputs(tmp_path, n=40):
    from snn2hw.data import load_dataset

    x, y = load_dataset("mnist5k").split("test")
    np.save(tmp_path / "frames.npy", rate_frames(x[:n], MNIST_STEPS))
    np.save(tmp_path / "labels.npy", np.asarray(y[:n], np.int64))
    return tmp_path / "frames.npy", tmp_path / "labels.npy"


def test_mnist_net_exports_maps_to_cores_classifies_and_reports(external, tmp_path):
    frames, labels = _mnist_inputs(tmp_path)
    out = tmp_path / "out"
    net = external / "lava-dl-netx/mnist/trained_mnist_network.net"
    r = CliRunner().invoke(main, ["export", str(net), "--target", "loihi", "-o", str(out),
                                  "--inputs", str(frames), "--labels", str(labels), "--json"])
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output)
    assert rep["source_format"] == "lava-dl netx" and rep["resources"]["total_cores"] >= 3
    assert (out / "report" / "index.html").is_file()
    assert (out / "trained_mnist_network.nir").is_file() and rep["float_accuracy"] >= 0.85
    q = out / "trained_mnist_network.qgraph"
    r = CliRunner().invoke(main, ["simulate", str(q), "--backend", "torch-int", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["accuracy"] >= 0.85  # 0.963 on all 1000 test images
    r = CliRunner().invoke(main, ["compare", str(q), "--backends", "float,torch-int,event,onnx",
                                  "--samples", "8"])
    assert r.exit_code == 0 and "agree on every spike" in r.output, r.output
    r = CliRunner().invoke(main, ["energy", str(q), "--target", "loihi"])
    assert r.exit_code == 0 and "J" in r.output, r.output


def test_tinynet_exports_to_nir_and_onnx_with_graded_input_frames(external, tmp_path):
    bias = np.load(external / "lava-dl-netx/tinynet/gts_tinynet_input_bias.npy")
    frames = np.broadcast_to(bias.transpose(2, 1, 0).astype(np.int64), (17, 1, 3, 16, 16))
    np.save(tmp_path / "x.npy", frames)
    out = tmp_path / "onnx"
    r = CliRunner().invoke(main, ["export", str(external / "lava-dl-netx/tinynet/tiny.net"),
                                  "--target", "onnx", "-o", str(out), "--inputs",
                                  str(tmp_path / "x.npy"), "--no-report"])
    assert r.exit_code == 0, r.output
    for name in ("tiny.nir", "tiny.qgraph", "tiny.int.onnx", "tiny.float.onnx"):
        assert (out / name).is_file(), name
    r = CliRunner().invoke(main, ["compare", str(out / "tiny.qgraph"), "--backends",
                                  "torch-int,event,lava,onnx"])
    assert r.exit_code == 0 and "agree on every spike" in r.output, r.output


def test_netx_without_inputs_asks_for_them(external, tmp_path):
    net = external / "lava-dl-netx/oxford/Trained_network.net"
    msg = _one_line_error(CliRunner().invoke(main, ["export", str(net), "-o", str(tmp_path)]))
    assert "--inputs FRAMES.npy" in msg


def test_a_netx_file_named_pt_is_named_as_netx(external, tmp_path):
    p = tmp_path / "model.pt"
    p.write_bytes((external / "lava-dl-netx/tinynet/tiny.net").read_bytes())
    msg = _one_line_error(CliRunner().invoke(main, ["export", str(p), "-o", str(tmp_path / "o")]))
    assert "a lava-dl netx network" in msg and "snn2hw export FILE.net" in msg


def test_a_netx_file_named_nir_is_named_as_netx(external, tmp_path):
    p = tmp_path / "model.nir"
    p.write_bytes((external / "lava-dl-netx/tinynet/tiny.net").read_bytes())
    msg = _one_line_error(CliRunner().invoke(main, ["export", str(p), "-o", str(tmp_path / "o")]))
    assert "is a lava-dl netx network" in msg and "name it .net" in msg


def test_a_nir_file_named_net_is_named_as_nir(external, tmp_path):
    p = tmp_path / "model.net"
    p.write_bytes((external / "nir-paper/01_lif/lif_norse.nir").read_bytes())
    msg = _one_line_error(CliRunner().invoke(
        main, ["export", str(p), "-o", str(tmp_path / "o"), "--inputs", str(p)]))
    assert "is a NIR graph" in msg


def test_a_checkpoint_named_net_is_named_as_a_checkpoint(tmp_path):
    import torch

    p = tmp_path / "model.net"
    torch.save({"format": "x"}, p)
    msg = _one_line_error(CliRunner().invoke(
        main, ["export", str(p), "-o", str(tmp_path / "o"), "--inputs", str(p)]))
    assert "PyTorch checkpoint" in msg


def test_a_truncated_net_file_is_one_line(external, tmp_path):
    data = (external / "lava-dl-netx/mnist/trained_mnist_network.net").read_bytes()
    p = tmp_path / "cut.net"
    p.write_bytes(data[:4096])
    np.save(tmp_path / "x.npy", np.zeros((4, 1, 784), np.int64))
    msg = _one_line_error(CliRunner().invoke(
        main, ["export", str(p), "-o", str(tmp_path / "o"), "--inputs", str(tmp_path / "x.npy")]))
    assert "truncated or damaged" in msg


def test_a_checkpoint_named_nir_is_named_as_a_checkpoint(tmp_path):
    import torch

    p = tmp_path / "model.nir"
    torch.save({"format": "x"}, p)
    msg = _one_line_error(CliRunner().invoke(
        main, ["export", str(p), "-o", str(tmp_path / "o"), "--inputs", str(p)]))
    assert "PyTorch checkpoint" in msg and "not a NIR graph" in msg


def test_tinynet_export_with_netx_resets_records_them_and_meets_the_ground_truth(external,
                                                                                 tmp_path):
    """``--netx-reset-interval 17``: netx's Network(reset_interval=17) as each layer's
    periodic reset (one step later than netx behind the input block's hop), recorded in
    export.md; the exported graph gives lava-dl's gts_tinynet_output on the event backend."""
    from snn2hw.backends import event
    from snn2hw.quant.qgraph import QGraph

    tiny = external / "lava-dl-netx/tinynet"
    bias = np.load(tiny / "gts_tinynet_input_bias.npy")
    frames = np.broadcast_to(bias.transpose(2, 1, 0).astype(np.int64), (20, 1, 3, 16, 16))
    np.save(tmp_path / "x.npy", frames)
    out = tmp_path / "o"
    r = CliRunner().invoke(main, ["export", str(tiny / "tiny.net"), "-o", str(out), "--inputs",
                                  str(tmp_path / "x.npy"), "--netx-reset-interval", "17",
                                  "--no-report", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["netx_reset"] == {"interval": 17, "offset": 0}
    md = (out / "export.md").read_text()
    assert "netx reset_interval 17, reset_offset 0" in md and "| lif2 |" in md
    assert "3 mod 17" in md
    g = QGraph.load(out / "tiny.qgraph")
    assert [n.reset_offset for n in g.lif_nodes] == [1, 2, 3]
    spk = event.run(g, frames, num_steps=20).spikes["lif2"][:, 0, :, 0, 0]
    gt = np.load(tiny / "gts_tinynet_output.npy")[0, :, 0, 0, :]
    assert np.abs(spk[3:18].T.astype(np.int64) - gt[:, 1:]).sum() == 0


def test_netx_reset_options_outside_a_netx_export_are_one_line(external, tmp_path):
    tiny = external / "lava-dl-netx/tinynet/tiny.net"
    msg = _one_line_error(CliRunner().invoke(
        main, ["export", str(tiny), "-o", str(tmp_path / "o"), "--netx-reset-offset", "2"]))
    assert "--netx-reset-offset needs --netx-reset-interval" in msg
    nir_file = external / "nir-paper/01_lif/lif_norse.nir"
    msg = _one_line_error(CliRunner().invoke(
        main, ["export", str(nir_file), "-o", str(tmp_path / "n"), "--netx-reset-interval", "4",
               "--inputs", str(nir_file)]))
    assert "apply to lava-dl netx files (.net) only" in msg
