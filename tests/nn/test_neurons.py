import pytest
import torch

from snn2hw.common.errors import ConfigError
from snn2hw.common.units import alpha_from_du, beta_from_dv
from snn2hw.nn.functional import LIFState, lif_step
from snn2hw.nn.neurons import IF, LIF, SRM, CubaLIF


def test_lif_integrates_leaks_and_hard_resets():
    n = LIF(beta=0.5, threshold=1.0)
    x = torch.tensor([0.6, 0.6, 0.6, 0.0]).view(4, 1, 1)
    # v: 0.6, 0.9, 1.05 -> spike, reset to 0, then 0
    assert n(x).view(-1).tolist() == [0.0, 0.0, 1.0, 0.0]


def test_threshold_is_strict():
    n = IF(threshold=1.0)
    assert n(torch.tensor([1.0, 0.0, 0.5]).view(3, 1, 1)).view(-1).tolist() == [0.0, 0.0, 1.0]


def test_subtractive_reset_keeps_the_excess():
    s, st = lif_step(
        torch.tensor([1.5]),
        LIFState(torch.zeros(1), torch.zeros(1)),
        alpha=0.0,
        beta=1.0,
        vth=1.0,
        reset="subtract",
    )
    assert s.item() == 1.0 and torch.allclose(st.v, torch.tensor([0.5]))


def test_cuba_current_decays_and_is_not_reset():
    s, st = lif_step(
        torch.tensor([2.0]),
        LIFState(torch.tensor([1.0]), torch.zeros(1)),
        alpha=0.5,
        beta=0.9,
        vth=1.0,
    )
    assert st.u.item() == 2.5 and s.item() == 1.0 and st.v.item() == 0.0


def test_srm_kernels_are_exponential_decays():
    m = SRM(tau_syn=2.0, tau_mem=8.0)
    a, b = m.factors()
    assert torch.isclose(a, torch.exp(torch.tensor(-0.5)))
    assert torch.isclose(b, torch.exp(torch.tensor(-1 / 8)))


def test_qat_rounds_decays_to_the_chip_grid():
    m = CubaLIF(alpha=0.7001, beta=0.9001)
    m.quantize_dynamics = True
    a, b = (float(f) for f in m.factors())
    du = round(4096 * (1 - 0.7001) - 1)
    dv = round(4096 * (1 - 0.9001))
    assert a == pytest.approx(alpha_from_du(du)) and b == pytest.approx(beta_from_dv(dv))


def test_learnable_threshold_and_decay_receive_gradients():
    m = CubaLIF(alpha=0.5, beta=0.8, learn_threshold=True, learn_decay=True)
    x = torch.rand(10, 4, 3, requires_grad=True) * 2
    m(x).sum().backward()
    assert m.threshold.grad is not None and m.beta.grad is not None and m.alpha.grad is not None


def test_out_of_range_parameters_are_rejected_with_names():
    with pytest.raises(ConfigError, match="beta"):
        LIF(beta=1.5)
    with pytest.raises(ConfigError, match="threshold"):
        LIF(threshold=float("nan"))
    with pytest.raises(ConfigError, match="reset"):
        LIF(reset="soft")
