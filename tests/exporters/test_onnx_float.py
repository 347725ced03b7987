"""The float ONNX exporter (snn2hw.exporters.onnx_float): the sequence model run by
onnxruntime gives the torch model's spikes (SpikingNet and NIRNet), and exporting changes
nothing: not the classes of snn2hw.nn or the NIR executor, not the net that was exported."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from snn2hw.common.errors import GraphError
from snn2hw.exporters.onnx_float import FLOAT_FORMAT, export_float_onnx


def _float_check(net, x, tmp_path: Path, batch_other: int):
    def flags():
        return [(getattr(m, "fused", None), getattr(m, "fused_ok", None), "forward" in vars(m),
                 m.training) for m in net.modules()]

    before = flags()
    info = export_float_onnx(net, x, tmp_path / "f.onnx")
    onnx.checker.check_model(onnx.load(tmp_path / "f.onnx"), full_check=True)
    assert flags() == before  # fused neurons, patched sum pools, train mode all restored
    sess = ort.InferenceSession(str(tmp_path / "f.onnx"), providers=["CPUExecutionProvider"])
    total = 0
    for xx in (x, torch.rand(x.shape[0], batch_other, *x.shape[2:]) * 2):
        y = sess.run(["spikes"], {"x": xx.numpy()})[0]
        with torch.no_grad():
            ref = net(xx).numpy()
        assert y.shape == ref.shape
        np.testing.assert_array_equal(y, ref)  # spikes exactly, float32
        total += int(ref.sum())
    assert total > 0
    return info


def test_float_export_spikingnet_mlp_equals_torch(tmp_path):
    from snn2hw.nn.model import SpikingNet

    torch.manual_seed(0)
    net = SpikingNet({
        "input_shape": [20],
        "layers": [{"type": "linear", "out": 32}, {"type": "neuron", "beta": 0.85},
                   {"type": "linear", "out": 16},
                   {"type": "neuron", "kind": "cuba", "alpha": 0.6, "reset": "subtract"},
                   {"type": "linear", "out": 5}, {"type": "neuron"}],
    })
    info = _float_check(net, torch.rand(25, 4, 20) * 2, tmp_path, batch_other=9)
    assert info.inputs == {"x": [25, "B", 20]} and info.outputs == {"spikes": [25, "B", 5]}
    assert info.metadata["model"] == "SpikingNet"


def test_float_export_conv_sumpool_spikingnet_and_its_nir_import(tmp_path):
    # torch.onnx.export drops avg_pool2d's divisor_override (sum -> average); the exporter
    # reroutes sum pools through a ones-convolution. Checked on SpikingNet and NIRNet.
    from snn2hw.nir import NIRNet, get_convention
    from snn2hw.nir.export import to_nir
    from snn2hw.nn.model import SpikingNet

    torch.manual_seed(1)
    net = SpikingNet({
        "input_shape": [1, 8, 8],
        "layers": [{"type": "conv", "out": 4, "kernel": 3, "padding": 1}, {"type": "neuron"},
                   {"type": "sumpool", "kernel": 2}, {"type": "flatten"},
                   {"type": "linear", "out": 5}, {"type": "neuron", "threshold": 0.5}],
    })
    x = torch.rand(12, 3, 1, 8, 8) * 2
    _float_check(net, x, tmp_path, batch_other=5)
    nir_net = NIRNet(to_nir(net, dt=1e-3), 1e-3, get_convention("snn2hw"))
    info = _float_check(nir_net, x, tmp_path, batch_other=5)
    assert info.metadata["model"] == "NIRNet"


def _conv_sumpool_spikingnet(seed=1):
    from snn2hw.nn.model import SpikingNet

    torch.manual_seed(seed)
    return SpikingNet({
        "input_shape": [1, 8, 8],
        "layers": [{"type": "conv", "out": 4, "kernel": 3, "padding": 1}, {"type": "neuron"},
                   {"type": "sumpool", "kernel": 2}, {"type": "flatten"},
                   {"type": "linear", "out": 5}, {"type": "neuron", "threshold": 0.5}],
    })


def _class_state(modules):
    """Every class defined in ``modules``, with its attribute dict (by identity)."""
    return {
        (mod.__name__, name): {k: id(v) for k, v in vars(cls).items()}
        for mod in modules for name, cls in vars(mod).items()
        if isinstance(cls, type) and cls.__module__ == mod.__name__
    }


def test_float_export_leaves_snn2hw_nn_and_the_executor_untouched(tmp_path):
    import snn2hw.nir.executor
    import snn2hw.nn.functional
    import snn2hw.nn.fused
    import snn2hw.nn.layers
    import snn2hw.nn.model
    import snn2hw.nn.neurons

    mods = [snn2hw.nn.layers, snn2hw.nn.neurons, snn2hw.nn.model, snn2hw.nn.functional,
            snn2hw.nn.fused, snn2hw.nir.executor]
    before = _class_state(mods)
    module_dicts = {m.__name__: {k: id(v) for k, v in vars(m).items()} for m in mods}
    net = _conv_sumpool_spikingnet()
    inst = [(type(m), sorted(vars(m)), getattr(m, "fused", None), m.training)
            for m in net.modules()]
    params = {k: v.clone() for k, v in net.state_dict().items()}
    x = torch.rand(12, 3, 1, 8, 8) * 2
    with torch.no_grad():
        y = net(x)
    export_float_onnx(net, x, tmp_path / "f.onnx")
    assert _class_state(mods) == before
    assert {m.__name__: {k: id(v) for k, v in vars(m).items()} for m in mods} == module_dicts
    assert [(type(m), sorted(vars(m)), getattr(m, "fused", None), m.training)
            for m in net.modules()] == inst
    assert all(torch.equal(v, params[k]) for k, v in net.state_dict().items())
    with torch.no_grad():
        assert torch.equal(net(x), y)


@pytest.mark.parametrize("training", [False, True], ids=["eval", "train"])
def test_a_nirnet_gives_the_same_outputs_after_its_export(tmp_path, training):
    from snn2hw.nir import NIRNet, get_convention
    from snn2hw.nir.export import to_nir

    net = NIRNet(to_nir(_conv_sumpool_spikingnet(2).eval(), 1e-3), 1e-3,
                 get_convention("snn2hw")).train(training)
    x = torch.rand(12, 3, 1, 8, 8) * 2
    with torch.no_grad():
        y, rec = net(x, record=True)
    modes = [m.training for m in net.modules()]
    params = {k: v.clone() for k, v in net.state_dict().items()}
    info = export_float_onnx(net, x, tmp_path / "f.onnx")
    assert info.format == FLOAT_FORMAT
    assert [m.training for m in net.modules()] == modes == [training] * len(modes)
    assert all(torch.equal(v, params[k]) for k, v in net.state_dict().items())
    with torch.no_grad():
        y2, rec2 = net(x, record=True)
    assert torch.equal(y, y2) and y.sum() > 0
    assert all(torch.equal(rec[k], rec2[k]) for k in rec)


def test_float_export_refuses_other_models_and_bad_examples(tmp_path):
    with pytest.raises(GraphError, match="exports a SpikingNet or a NIRNet, got Linear"):
        export_float_onnx(torch.nn.Linear(3, 2), torch.zeros(4, 1, 3), tmp_path / "f.onnx")
    net = _conv_sumpool_spikingnet()
    with pytest.raises(GraphError, match="must be a float tensor"):
        export_float_onnx(net, torch.zeros(4, 1, 1, 8, 8, dtype=torch.int64), tmp_path / "f.onnx")
    with pytest.raises(GraphError, match="exports float32 models"):
        export_float_onnx(net.double(), torch.zeros(4, 1, 1, 8, 8), tmp_path / "f.onnx")
    assert not (tmp_path / "f.onnx").exists()
