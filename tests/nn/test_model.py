import pytest
import torch

from snn2hw.common.errors import ConfigError
from snn2hw.nn.encoders import Encoder
from snn2hw.nn.layers import TimeDropout
from snn2hw.nn.losses import exp_filter, spike_loss, target_spike_trains
from snn2hw.nn.model import SpikingNet

CONV = {
    "input_shape": [1, 8, 8],
    "layers": [
        {"type": "conv", "out": 4, "kernel": 3, "padding": 1},
        {"type": "norm"},
        {"type": "neuron"},
        {"type": "sumpool", "kernel": 2},
        {
            "type": "residual",
            "layers": [{"type": "conv", "out": 4, "kernel": 3, "padding": 1}],
            "shortcut": [],
        },
        {"type": "neuron", "kind": "srm"},
        {"type": "avgpool", "kernel": 2},
        {"type": "flatten"},
        {"type": "dropout", "p": 0.1},
        {"type": "linear", "out": 10},
        {"type": "neuron", "kind": "cuba", "alpha": 0.5},
    ],
}


def test_conv_residual_model_runs_time_major_and_records_every_spiking_layer():
    m = SpikingNet(CONV)
    out, rec = m(torch.rand(6, 3, 1, 8, 8), record=True)
    assert out.shape == (6, 3, 10) and m.output_shape == (10,)
    assert len(rec) == 3
    out.sum().backward()


def test_unknown_layer_key_is_named():
    bad = {
        "input_shape": [4],
        "layers": [{"type": "linear", "out": 2, "outs": 3}, {"type": "neuron"}],
    }
    with pytest.raises(ConfigError, match=r"layers\[0\].*outs"):
        SpikingNet(bad)


def test_linear_on_image_asks_for_flatten():
    with pytest.raises(ConfigError, match="flatten"):
        SpikingNet(
            {"input_shape": [1, 8, 8], "layers": [{"type": "linear", "out": 2}, {"type": "neuron"}]}
        )


def test_last_layer_must_spike():
    with pytest.raises(ConfigError, match="last layer"):
        SpikingNet({"input_shape": [4], "layers": [{"type": "linear", "out": 2}]})


def test_time_dropout_mask_is_fixed_across_time():
    d = TimeDropout(0.5).train()
    y = d(torch.ones(7, 2, 50))
    assert (y == y[0]).all() and (y[0] == 0).any()


def test_encoders_shapes_and_semantics():
    x = torch.tensor([[0.0, 0.5, 1.0]])
    assert Encoder("direct")(x, 4).shape == (4, 1, 3)
    p = Encoder("poisson")(torch.ones(1, 1000) * 0.3, 20, torch.Generator().manual_seed(0))
    assert 0.25 < float(p.mean()) < 0.35 and set(p.unique().tolist()) <= {0.0, 1.0}
    lat = Encoder("latency")(x, 5)
    assert lat[:, 0, 2].tolist() == [1, 0, 0, 0, 0]  # brightest first
    assert lat[:, 0, 1].tolist() == [0, 0, 1, 0, 0]
    assert lat[:, 0, 0].sum() == 0  # below threshold: silent
    ev = torch.rand(2, 5, 3)
    assert torch.equal(Encoder("events")(ev, 5), ev.transpose(0, 1))


def test_van_rossum_loss_is_zero_for_the_target_train_and_positive_otherwise():
    labels = torch.tensor([1, 3])
    target = target_spike_trains(labels, 5, 12, period=3)
    assert float(spike_loss("van_rossum", target, labels, period=3)) == 0.0
    assert float(spike_loss("van_rossum", torch.zeros_like(target), labels, period=3)) > 0


def test_exp_filter_matches_recursive_definition():
    s = torch.rand(9, 2)
    y = exp_filter(s, 3.0)
    ref = torch.zeros(2)
    d = torch.exp(torch.tensor(-1 / 3.0))
    for t in range(9):
        ref = d * ref + s[t]
        assert torch.allclose(y[t], ref, atol=1e-6)
