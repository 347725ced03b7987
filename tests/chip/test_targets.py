"""Targets as data: loading, validation messages, provenance of every constant."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

import snn2hw.chip.targets as targets_mod
import snn2hw.chip.targets.files as target_files
from snn2hw.chip.targets import (
    REQUIRED_ENERGY,
    REQUIRED_LATENCY,
    format_target,
    list_targets,
    load_baselines,
    load_target,
    targets_dir,
)
from snn2hw.common.errors import TargetError

REPO = Path(__file__).resolve().parents[2]  # tests/chip/test_targets.py -> the repository
BUNDLED = REPO / "snn2hw" / "chip" / "targets" / "data"
LOIHI_TOML = BUNDLED / "loihi.toml"


def broken_copy(tmp_path: Path, old: str, new: str, name: str = "x.toml") -> Path:
    """Write the bundled loihi.toml with ``old`` replaced by ``new`` (which must occur)."""
    text = LOIHI_TOML.read_text(encoding="utf-8")
    assert old in text, old
    path = tmp_path / name
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def test_loihi_loads_with_spec_formats_and_resources() -> None:
    t = load_target("loihi")
    f, r = t.formats, t.resources
    assert t.name == "loihi" and t.neuron_model == "loihi_cuba_lif"
    assert (f.weight_mantissa_bits, f.weight_exp_min, f.weight_exp_max) == (8, -7, 7)
    assert f.weight_range_mixed == (-256, 255) and f.weight_range_inhibitory == (-255, 0)
    assert f.mixed_sign_lsb_loss and f.activation_shift == 6
    assert (f.u_bits, f.u_overflow, f.v_bits, f.v_overflow) == (24, "wrap", 24, "saturate")
    assert f.decay_max == 4095 and f.vth_max == 131071
    assert f.bias_mant_range == (-4096, 4095) and (f.bias_exp_min, f.bias_exp_max) == (0, 7)
    assert f.max_message_bits == 0 and f.max_synaptic_delay == 0
    assert (r.cores_per_chip, r.neurons_per_core) == (128, 1024)
    assert (r.input_axons_per_core, r.output_axons_per_core) == (4096, 4096)
    assert r.synaptic_memory_bits_per_core == 128 * 1024 * 8
    assert r.max_chips == 16384
    assert r.bits_per_synapse == 18


def test_loihi2_loads_with_derived_limits_marked_as_assumptions() -> None:
    t = load_target("loihi2")
    r = t.resources
    assert r.cores_per_chip == 128
    assert r.neurons_per_core == 2**20 // 128
    assert r.synaptic_memory_bits_per_core == 120_000_000 // 128
    assert t.formats.max_message_bits == 32 and t.formats.max_synaptic_delay == 63
    for key in ("neurons_per_core", "synaptic_memory_bits_per_core", "input_axons_per_core"):
        assert r.limits[key].assumption, key
    assert not r.limits["cores_per_chip"].assumption
    # the formats are Lava's fixed-point model's, and the file says so
    assert "Lava" in t.formats.note


def test_targets_dir_is_the_bundled_package_data_folder(monkeypatch) -> None:
    monkeypatch.delenv(targets_mod.TARGETS_ENV, raising=False)
    assert targets_dir() == BUNDLED
    assert target_files.search_path() == [BUNDLED]
    assert "snn2hw/chip/targets/data/loihi.toml" in format_target(load_target("loihi"))


def test_list_targets_names_the_repo_files_but_not_baselines() -> None:
    names = list_targets()
    assert {"loihi", "loihi2"} <= set(names)
    assert "baselines" not in names
    assert names == sorted(names)


def test_every_constant_has_a_source() -> None:
    for name in list_targets():
        t = load_target(name)
        for c in t.resources.limits.values():
            assert c.source.strip(), (name, c.name)
        for table in (t.energy, t.latency):
            for c in table.constants.values():
                assert c.source.strip(), (name, c.name)
    b = load_baselines()
    for group in b.groups.values():
        for c in group.constants.values():
            assert c.source.strip(), c.name


def test_loihi_energy_is_davies_table_2_and_pre_silicon() -> None:
    t = load_target("loihi")
    expected = {
        "synop_pj": 23.6, "syn_update_pj": 120.0, "neuron_update_active_pj": 81.0,
        "neuron_update_inactive_pj": 52.0, "spike_within_tile_pj": 1.7, "hop_ew_pj": 3.0,
        "hop_ns_pj": 4.0,
    }
    assert set(REQUIRED_ENERGY) == set(expected)
    for key, val in expected.items():
        c = t.energy[key]
        assert c.value == val and c.unit == "pJ" and c.pre_silicon
        assert "Davies" in c.source and "Table 2" in c.source
    assert t.energy["synop_pj"].si == pytest.approx(23.6e-12)
    lat = {"spike_within_tile_ns": 2.1, "hop_ew_ns": 4.1, "hop_ns_ns": 6.5}
    assert set(REQUIRED_LATENCY) == set(lat)
    for key, val in lat.items():
        assert t.latency[key].value == val and t.latency[key].pre_silicon


def test_loihi2_has_no_invented_energy_or_latency() -> None:
    t = load_target("loihi2")
    for table in (t.energy, t.latency):
        assert table.available is False
        assert len(table) == 0
        assert "published" in table.note
    with pytest.raises(TargetError, match="not available"):
        t.energy["synop_pj"]


def test_baselines_carry_horowitz_convention_and_measured_systems() -> None:
    b = load_baselines()
    h = b["horowitz_45nm"]
    assert (h.value("int8_add_pj"), h.value("int8_mult_pj")) == (0.03, 0.2)
    assert (h.value("int32_add_pj"), h.value("int32_mult_pj")) == (0.1, 3.1)
    assert (h.value("fp16_add_pj"), h.value("fp16_mult_pj")) == (0.4, 1.1)
    assert (h.value("fp32_add_pj"), h.value("fp32_mult_pj")) == (0.9, 3.7)
    assert h.value("sram_8kb_read_pj") == 10 and h.value("sram_1mb_read_pj") == 100
    assert h["dram_read_min_nj"].si == pytest.approx(1.3e-9)
    conv = b["snn_convention"]
    # E_MAC is fp32 mult + add, E_AC is fp32 add
    assert conv.value("e_mac_pj") == pytest.approx(h.value("fp32_mult_pj") + h.value("fp32_add_pj"))
    assert conv.value("e_ac_pj") == h.value("fp32_add_pj")
    m = b["measured"]
    assert (m.value("loihi_kws_mj"), m.value("cpu_kws_mj"), m.value("gpu_kws_mj")) == (
        0.27, 6.3, 29.8)
    assert "1812.01739" in m["loihi_kws_mj"].source
    assert m["xylo_audio2_kws_uj"].si == pytest.approx(6.6e-6)
    with pytest.raises(TargetError, match="known: horowitz_45nm"):
        b["nope"]


def test_unknown_target_lists_known_ones() -> None:
    with pytest.raises(TargetError) as err:
        load_target("loihi9")
    msg = str(err.value)
    assert "unknown target 'loihi9'" in msg and "loihi, loihi2" in msg
    with pytest.raises(TargetError, match="unknown target 'baselines'"):
        load_target("baselines")


def test_target_loads_from_a_path(tmp_path: Path) -> None:
    path = broken_copy(tmp_path, 'name = "loihi"', 'name = "mychip"', "mychip.toml")
    t = load_target(path)
    assert t.name == "mychip" and t.resources.neurons_per_core == 1024
    assert load_target(str(path)).name == "mychip"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        # missing key
        ("u_bits = 24\n", "", r"formats\.u_bits missing in .*x\.toml"),
        # wrong type
        ("u_bits = 24", 'u_bits = "24"', r"formats\.u_bits in .*x\.toml must be an integer"),
        ("mixed_sign_lsb_loss = true", "mixed_sign_lsb_loss = 1",
         r"formats\.mixed_sign_lsb_loss .*must be true or false"),
        ("value = 1024\n", "value = 1024.5\n",
         r"resources\.neurons_per_core\.value in .*x\.toml must be an integer"),
        ("value = 23.6", 'value = "23.6"', r"energy\.synop_pj\.value .*must be a number"),
        # out of range
        ("decay_bits = 12", "decay_bits = 99", r"formats\.decay_bits in .*= 99 is out of range"),
        ("value = 128\n", "value = 0\n", r"resources\.cores_per_chip\.value .*out of range"),
        ("value = 23.6", "value = -23.6", r"energy\.synop_pj\.value .*out of range"),
        ("weight_exp_max = 7", "weight_exp_max = -1", r"formats\.weight_exp_max .*out of range"),
        ("bias_exp_min = 0", "bias_exp_min = 9",
         r"formats\.bias_exp_min .*= 9 is larger than formats\.bias_exp_max = 7"),
        ('u_overflow = "wrap"', 'u_overflow = "wraps"', r"formats\.u_overflow .*'wrap'"),
        # unknown key (a typo must not be ignored)
        ("v_bits = 24", "v_bits = 24\nvbits = 24", r"formats\.vbits .*not a known key"),
        # a constant without a source
        ('source = "Davies et al., IEEE Micro 38(1), 2018, Table 2: synaptic spike operation',
         'sauce = "Davies et al., IEEE Micro 38(1), 2018, Table 2: synaptic spike operation',
         r"energy\.synop_pj\.sauce .*not a known key"),
        # a new neuron model needs code
        ('neuron_model = "loihi_cuba_lif"', 'neuron_model = "izhikevich"',
         r"target\.neuron_model .*no implementation"),
    ],
)
def test_malformed_target_names_file_and_key(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    path = broken_copy(tmp_path, old, new)
    with pytest.raises(TargetError, match=expected):
        load_target(path)


def test_toml_syntax_error_reports_the_line(tmp_path: Path) -> None:
    lines = LOIHI_TOML.read_text(encoding="utf-8").splitlines()
    lines.insert(11, "this line is not toml")  # becomes line 12
    path = tmp_path / "x.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(TargetError, match=r"x\.toml: TOML syntax error: .*line 12"):
        load_target(path)


def test_missing_energy_constant_is_named(tmp_path: Path) -> None:
    text = LOIHI_TOML.read_text(encoding="utf-8")
    text, n = re.subn(r"\[energy\.synop_pj\]\n(?:.+\n)+", "", text)
    assert n == 1
    path = tmp_path / "x.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(TargetError, match=r"^energy\.synop_pj missing in .*x\.toml$"):
        load_target(path)


def test_unavailable_energy_must_explain_and_carry_no_numbers(tmp_path: Path) -> None:
    path = broken_copy(tmp_path, "[energy]\navailable = true", "[energy]\navailable = false")
    with pytest.raises(TargetError, match=r"energy\.synop_pj .*available = false"):
        load_target(path)


def test_missing_section_is_named(tmp_path: Path) -> None:
    text = LOIHI_TOML.read_text(encoding="utf-8")
    text = re.sub(r"\[latency\][\s\S]*", "", text)
    path = tmp_path / "x.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(TargetError, match=r"\[latency\] missing in .*x\.toml"):
        load_target(path)


def test_env_folders_add_targets_that_take_precedence_over_bundled_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    broken_copy(second, 'name = "loihi"', 'name = "elsewhere"', "elsewhere.toml")
    # a user loihi.toml shadows the bundled one (in a checkout too), first folder first
    cores = 'value = 128\nsource = "Davies et al. 2018: 128'
    broken_copy(first, cores, 'value = 64\nsource = "x', "loihi.toml")
    broken_copy(second, cores, 'value = 32\nsource = "x', "loihi.toml")
    (second / "baselines.toml").write_text(
        (BUNDLED / "baselines.toml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    monkeypatch.setenv(targets_mod.TARGETS_ENV, f"{first}{os.pathsep}{second}")
    names = list_targets()
    assert {"elsewhere", "loihi", "loihi2", "generic4"} <= set(names)
    assert "baselines" not in names
    assert load_target("elsewhere").name == "elsewhere"
    assert load_target("loihi").path == first / "loihi.toml"
    assert load_target("loihi").resources.cores_per_chip == 64
    assert load_target("loihi2").path == BUNDLED / "loihi2.toml"  # not shadowed
    assert load_baselines().path == second / "baselines.toml"
    monkeypatch.delenv(targets_mod.TARGETS_ENV)
    assert load_target("loihi").path == BUNDLED / "loihi.toml"
    with pytest.raises(TargetError, match="unknown target 'elsewhere'.*SNN2HW_TARGETS_DIR"):
        load_target("elsewhere")
    monkeypatch.setenv(targets_mod.TARGETS_ENV, str(tmp_path / "absent"))
    with pytest.raises(TargetError, match="SNN2HW_TARGETS_DIR.*is not a folder"):
        list_targets()


def test_format_target_shows_every_constant_with_its_source() -> None:
    for name in ("loihi", "loihi2"):
        t = load_target(name)
        text = format_target(t)
        for c in t.resources.limits.values():
            assert c.source in text
        for table in (t.energy, t.latency):
            for c in table.constants.values():
                assert c.source in text
    assert "[pre-silicon]" in format_target(load_target("loihi"))
    text2 = format_target(load_target("loihi2"))
    assert "not available" in text2 and "[assumption]" in text2


def test_target_to_dict_is_json() -> None:
    d = json.loads(json.dumps(load_target("loihi").to_dict()))
    assert d["energy"]["constants"]["synop_pj"]["value"] == 23.6
    assert d["resources"]["neurons_per_core"]["value"] == 1024
    assert d["formats"]["weight_range_mixed"] == [-256, 255]


def test_package_keeps_every_name_the_module_exported() -> None:
    # snn2hw/chip/targets.py became a package; callers import from snn2hw.chip.targets
    for name in ("Baselines", "Constant", "ConstantTable", "Formats", "Resources", "Target",
                 "format_target", "list_targets", "load_baselines", "load_target",
                 "targets_dir", "TARGETS_ENV", "BASELINES_FILE", "NEURON_MODELS", "UNITS",
                 "REQUIRED_ENERGY", "REQUIRED_LATENCY", "FORMAT_KEYS", "RESOURCE_KEYS"):
        assert hasattr(targets_mod, name), name
        assert name in targets_mod.__all__, name


def test_generic_target_loads_and_reads_its_rule_keys() -> None:
    t = load_target("generic4")
    assert "generic4" in list_targets()
    assert (t.formats.reset, t.formats.threshold_compare) == ("subtract", ">")
    assert t.number_formats.u_bits == 16 and t.bits_per_synapse == 4 + 8
    assert not t.energy.available and not t.latency.available
    assert all(c.assumption for c in t.resources.limits.values())
    text = format_target(t)
    assert "v -= vth << 4 on a spike" in text and "16-bit, saturate" in text
    assert json.loads(json.dumps(t.to_dict()))["formats"]["reset"] == "subtract"


def test_rule_keys_default_to_loihi_and_bad_values_are_named(tmp_path: Path) -> None:
    t = load_target("loihi")
    assert (t.formats.reset, t.formats.threshold_compare) == ("zero", ">")
    path = broken_copy(tmp_path, "u_bits = 24", 'u_bits = 24\nreset = "soft"')
    with pytest.raises(TargetError, match=r"formats\.reset .* is not one of 'zero', 'subtract'"):
        load_target(path)


def test_resource_model_uses_the_formats_weight_bits(tmp_path: Path) -> None:
    path = broken_copy(tmp_path, "weight_mantissa_bits = 8", "weight_mantissa_bits = 4")
    t = load_target(path)
    assert t.bits_per_synapse == 4 + 10 and t.resources.bits_per_synapse == 18


def test_cli_targets_dir_option_adds_user_target_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from snn2hw.cli import main

    monkeypatch.setenv(targets_mod.TARGETS_ENV, "")  # restored after the test, like the CLI's
    mine = tmp_path / "mine"
    mine.mkdir()
    broken_copy(mine, 'name = "loihi"', 'name = "mychip"', "mychip.toml")
    without = CliRunner().invoke(main, ["targets"])
    assert "mychip" not in without.output
    with_dir = CliRunner().invoke(main, ["--targets-dir", str(mine), "targets"])
    assert with_dir.exit_code == 0, with_dir.output
    assert "mychip" in with_dir.output
    missing = CliRunner().invoke(main, ["--targets-dir", str(tmp_path / "absent"), "targets"])
    assert missing.exit_code == 2 and "does not exist" in missing.output
