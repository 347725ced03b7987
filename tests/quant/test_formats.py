"""Loihi number formats (snn2hw.quant.formats): weights Lava's Dense keeps unchanged
(docs/qgraph.md), weight exponents, decays and bias mantissa/exponent (docs/nir.md)."""

from __future__ import annotations

import numpy as np
import pytest

from snn2hw.backends.torch_int import prepare_dense_weight
from snn2hw.quant.formats import (
    BIAS_INT_MAX,
    choose_weight_exp,
    du_from_alpha,
    dv_from_beta,
    round_weights,
    split_bias,
)


def lava_dense_weights(w: np.ndarray, num_weight_bits: int = 8) -> np.ndarray:
    """docs/qgraph.md, written out independently: sign mode, clip, LSB truncation (floor)."""
    w = np.asarray(w, dtype=np.int64)
    if w.min() >= 0:
        mode = "exc"
        w = np.clip(w, 0, 255)
    elif w.max() <= 0:
        mode = "inh"
        w = np.clip(w, -255, 0)
    else:
        mode = "mixed"
        w = np.clip(w, -256, 255)
    k = 8 - num_weight_bits + (1 if mode == "mixed" else 0)
    if mode == "inh":
        return -(((-w) >> k) << k)
    return (w >> k) << k


# ----- round_weights -----------------------------------------------------------------------


def test_spec_example_seven_minus_seven_rounds_to_plus_minus_eight() -> None:
    # 7/2 = 3.5 rounds half away from zero to 4, times 2: [8, -8] (not Lava's lossy [6, -8])
    q = round_weights(np.array([7.0, -7.0]))
    np.testing.assert_array_equal(q, [8, -8])
    np.testing.assert_array_equal(lava_dense_weights(np.array([7, -7])), [6, -8])
    np.testing.assert_array_equal(lava_dense_weights(q), q)


def test_mixed_sign_rounding_is_symmetric_and_half_away_from_zero() -> None:
    w = np.array([0.9, 1.0, 1.1, 2.9, 3.0, 5.0, -0.9, -1.0, -1.1, -2.9, -3.0, -5.0])
    q = round_weights(w)
    np.testing.assert_array_equal(q, [0, 2, 2, 2, 4, 6, 0, -2, -2, -2, -4, -6])
    np.testing.assert_array_equal(round_weights(-w), -q)


def test_mixed_sign_values_saturate_at_plus_minus_254() -> None:
    q = round_weights(np.array([255.0, 254.9, 1000.0, -255.0, -256.0, -1e6]))
    np.testing.assert_array_equal(q, [254, 254, 254, -254, -254, -254])


def test_random_mixed_matrices_are_even_legal_and_survive_lava_truncation() -> None:
    rng = np.random.default_rng(0)
    for trial in range(200):
        scale = rng.choice([1.0, 50.0, 254.0, 400.0])
        w = rng.normal(0.0, scale, size=(rng.integers(1, 9), rng.integers(2, 9)))
        w.flat[0], w.flat[-1] = abs(w.flat[0]) + 0.01, -abs(w.flat[-1]) - 0.01  # both signs
        q = round_weights(w)
        assert q.dtype == np.int64
        assert np.all(q % 2 == 0), trial
        assert q.min() >= -254 and q.max() <= 254, trial
        # within one even step of the exact value wherever not saturated
        inside = np.abs(w) <= 254
        assert np.all(np.abs(q[inside] - w[inside]) <= 1.0 + 1e-9), trial
        np.testing.assert_array_equal(lava_dense_weights(q), q)
        np.testing.assert_array_equal(prepare_dense_weight(q, 8), q)


def test_mixed_matrix_rounding_to_one_sign_stays_even() -> None:
    # the positive entry rounds away: what Lava sees is inhibitory, still unchanged
    q = round_weights(np.array([[0.4, -5.0], [-7.2, -0.1]]))
    np.testing.assert_array_equal(q, [[0, -6], [-8, 0]])
    np.testing.assert_array_equal(lava_dense_weights(q), q)


def test_excitatory_matrices_use_0_to_255_with_odd_values() -> None:
    w = np.array([[0.0, 0.49, 0.5, 1.5, 2.5], [7.0, 254.4, 254.5, 255.0, 1e4]])
    q = round_weights(w)
    np.testing.assert_array_equal(q, [[0, 0, 1, 2, 3], [7, 254, 255, 255, 255]])
    assert np.any(q % 2 == 1)
    np.testing.assert_array_equal(lava_dense_weights(q), q)
    np.testing.assert_array_equal(prepare_dense_weight(q, 8), q)


def test_inhibitory_matrices_use_minus_255_to_0_with_odd_values() -> None:
    w = -np.array([[0.0, 0.49, 0.5, 1.5, 2.5], [7.0, 254.4, 254.5, 255.0, 1e4]])
    q = round_weights(w)
    np.testing.assert_array_equal(q, [[0, 0, -1, -2, -3], [-7, -254, -255, -255, -255]])
    np.testing.assert_array_equal(lava_dense_weights(q), q)
    np.testing.assert_array_equal(prepare_dense_weight(q, 8), q)


def test_random_single_sign_matrices_round_to_nearest_and_survive_lava() -> None:
    rng = np.random.default_rng(1)
    for trial in range(100):
        w = np.abs(rng.normal(0.0, 100.0, size=(4, 6)))
        for sign in (1.0, -1.0):
            q = round_weights(sign * w)
            assert sign * q.min() >= 0 and np.abs(q).max() <= 255, trial
            inside = w <= 255
            assert np.all(np.abs(q[inside] - sign * w[inside]) <= 0.5 + 1e-9), trial
            np.testing.assert_array_equal(lava_dense_weights(q), q)


def test_all_zero_matrix_rounds_to_zeros() -> None:
    np.testing.assert_array_equal(round_weights(np.zeros((2, 3))), np.zeros((2, 3), np.int64))


# ----- choose_weight_exp -------------------------------------------------------------------


def brute_force_exp(vth: float, m: float, limit: int) -> int:
    for e in range(-7, 8):
        if vth * m * 2.0**-e <= limit:
            return e
    return 7


@pytest.mark.parametrize(
    ("vth", "m", "limit", "want"),
    [
        (254, 1.0, 254, 0),  # exactly at the limit: no shift
        (508, 1.0, 254, 1),
        (509, 1.0, 254, 2),
        (127, 1.0, 254, -1),
        (1, 1.0, 255, -7),  # clamped at -7
        (131071, 1e6, 255, 7),  # clamped at 7 even though it does not fit
        (131071, 1 / 128, 255, 3),  # 131071 / 128 / 255 = 4.016: 2^2 < 4.016 <= 2^3
    ],
)
def test_choose_weight_exp_known_values(vth, m, limit, want) -> None:
    assert choose_weight_exp(vth, m, limit) == want


def test_choose_weight_exp_is_smallest_fitting_exponent() -> None:
    rng = np.random.default_rng(2)
    for _ in range(2000):
        vth = int(rng.integers(1, 131072))
        m = float(10.0 ** rng.uniform(-6, 1))
        limit = int(rng.choice([254, 255]))
        e = choose_weight_exp(vth, m, limit)
        assert -7 <= e <= 7
        assert e == brute_force_exp(vth, m, limit), (vth, m, limit)
        if -7 < e < 7:
            assert vth * m * 2.0**-e <= limit < vth * m * 2.0 ** (1 - e)


def test_choose_weight_exp_of_zero_weights_is_zero() -> None:
    assert choose_weight_exp(1000, 0.0, 254) == 0


# ----- decays ------------------------------------------------------------------------------


def test_decay_endpoints() -> None:
    assert du_from_alpha(0.0) == 4095  # no synaptic memory: plain LIF
    assert du_from_alpha(1.0) == -1  # no current decay
    assert dv_from_beta(1.0) == 0  # no leak
    assert dv_from_beta(0.9) == 410  # 409.6 rounds up
    assert dv_from_beta(0.0) == 4096  # one past the register; decay_in_range refuses it


def test_decays_invert_the_chip_formulas_for_every_register_value() -> None:
    for du in range(-1, 4096):
        assert du_from_alpha(1.0 - (du + 1) / 4096) == du
    for dv in range(0, 4096):
        assert dv_from_beta(1.0 - dv / 4096) == dv


def test_decays_round_to_nearest_register() -> None:
    # docs/nir.md "Decays": dv = round(4096 a_m), du = round(4096 a_s) - 1
    for a in (0.05, 0.2, 1 / 3, 0.001, 0.0123):
        assert dv_from_beta(1.0 - a) == round(4096 * a)
        assert du_from_alpha(1.0 - a) == round(4096 * a) - 1


# ----- split_bias --------------------------------------------------------------------------


def test_split_bias_small_values_are_exact_with_exponent_zero() -> None:
    b = np.array([0, 1, -1, 4095, -4095, 17])
    mant, exp = split_bias(b)
    np.testing.assert_array_equal(mant, b)
    np.testing.assert_array_equal(exp, 0)


def test_split_bias_reproduces_values_within_rounding() -> None:
    rng = np.random.default_rng(3)
    b = np.concatenate(
        [
            rng.integers(-BIAS_INT_MAX, BIAS_INT_MAX + 1, 3000),
            rng.integers(-9000, 9000, 1000),
            [4096, -4096, 8190, 8191, -8191, 4095 << 7, -(4095 << 7), 4095 << 3, (4095 << 3) + 1],
        ]
    )
    mant, exp = split_bias(b)
    assert mant.shape == b.shape and exp.shape == b.shape
    assert np.abs(mant).max() <= 4095
    assert exp.min() >= 0 and exp.max() <= 7
    back = mant << exp
    half = np.where(exp > 0, 1 << np.maximum(exp - 1, 0), 0)
    assert np.all(np.abs(back - b) <= half)
    # smallest exponent: b fits at exp, and would not fit at exp - 1
    assert np.all(np.abs(b) <= (4095 << exp))
    lower = exp > 0
    assert np.all(np.abs(b[lower]) > (4095 << (exp[lower] - 1)))


def test_split_bias_keeps_array_shape_and_rounds_floats() -> None:
    b = np.array([[1.4, -1.6], [10000.0, -0.2]])
    mant, exp = split_bias(b)
    assert mant.shape == (2, 2) and mant.dtype == np.int64 and exp.dtype == np.int64
    np.testing.assert_array_equal((mant << exp)[0], [1, -2])
    assert abs((int(mant[1, 0]) << int(exp[1, 0])) - 10000) <= 2


def test_split_bias_saturates_beyond_the_range() -> None:
    mant, exp = split_bias(np.array([10**9, -(10**9)]))
    np.testing.assert_array_equal(exp, [7, 7])
    assert mant[0] == 4095 and mant[1] in (-4095, -4096)


# ----- one decay formula (snn2hw.common.units) ---------------------------------------------


def test_integer_decays_are_the_units_registers() -> None:
    """With Loihi's 12-bit decays the formats' registers are the units' (one formula)."""
    from snn2hw.common import units
    from snn2hw.quant import formats

    for x in np.linspace(0.0, 1.0, 4097 * 3):
        assert formats.du_from_alpha(float(x)) == units.du_register(float(x))
        assert formats.dv_from_beta(float(x)) == units.dv_register(float(x))


def test_registers_round_the_unrounded_unit_conversions() -> None:
    from snn2hw.common.units import (
        alpha_from_du,
        beta_from_dv,
        du_from_alpha,
        du_register,
        dv_from_beta,
        dv_register,
    )

    for reg in (-1, 0, 1, 818, 2047, 4095):
        assert du_register(alpha_from_du(reg)) == reg
        assert du_from_alpha(alpha_from_du(reg)) == pytest.approx(reg)
    for reg in (0, 1, 205, 410, 4095):
        assert dv_register(beta_from_dv(reg)) == reg
        assert dv_from_beta(beta_from_dv(reg)) == pytest.approx(reg)
    assert dv_register(0.9) == round(dv_from_beta(0.9)) == 410
