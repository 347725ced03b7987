import math

import pytest
import torch

from snn2hw.common.errors import ConfigError
from snn2hw.nn.surrogate import SURROGATES, Surrogate, spike, surrogate_grad


def test_spike_forward_is_strict_heaviside_for_every_surrogate():
    x = torch.tensor([-1.0, 0.0, 1e-6, 2.0])
    for name in SURROGATES:
        assert spike(x, Surrogate(name)).tolist() == [0.0, 0.0, 1.0, 1.0]


@pytest.mark.parametrize("name", sorted(SURROGATES))
def test_backward_uses_the_named_surrogate_derivative(name):
    x = torch.linspace(-2, 2, 41, requires_grad=True)
    sur = Surrogate(name)
    spike(x, sur, vth=1.0, leak=0.1).sum().backward()
    expected = surrogate_grad(x.detach(), sur, 1.0, 0.1)
    assert torch.allclose(x.grad, expected)
    assert (expected >= 0).all() and expected.max() > 0


def test_stbp_rectangular_and_gaussian_match_their_formulas():
    x = torch.tensor([0.0, 0.4, 0.6])
    assert surrogate_grad(x, Surrogate("rectangular", 1.0)).tolist() == [1.0, 1.0, 0.0]
    g = surrogate_grad(torch.tensor([0.0]), Surrogate("gaussian", 0.5))
    assert math.isclose(float(g), 1 / math.sqrt(2 * math.pi * 0.5), rel_tol=1e-6)


def test_arctan_peak_is_alpha_over_two():
    assert math.isclose(float(surrogate_grad(torch.tensor(0.0), Surrogate("arctan", 2.0))), 1.0)


def test_leaky_linear_scales_with_leak_and_threshold():
    g = surrogate_grad(torch.tensor([0.0, 3.0]), Surrogate("leaky_linear"), vth=2.0, leak=0.1)
    assert torch.allclose(g, torch.tensor([1.1 / 2.0, 0.0]))


def test_unknown_surrogate_is_a_config_error_listing_known_ones():
    with pytest.raises(ConfigError, match="arctan"):
        Surrogate("nope")
