import pytest

from snn2hw.common.errors import ConfigError
from snn2hw.common.examples import examples_dir
from snn2hw.training.config import load_config, validate_config

LAYERS = [{"type": "flatten"}, {"type": "linear", "out": 10}, {"type": "neuron"}]


def test_defaults_are_filled_in():
    cfg = validate_config({"model": {"layers": LAYERS}})
    assert cfg["train"]["num_steps"] == 8 and cfg["data"]["dataset"] == "digits"


def test_unknown_key_names_section_and_key():
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['lrr'\] in \[train\]"):
        validate_config({"model": {"layers": LAYERS}, "train": {"lrr": 0.1}})


def test_unknown_section_is_rejected():
    with pytest.raises(ConfigError, match="unknown section"):
        validate_config({"model": {"layers": LAYERS}, "trian": {}})


def test_wrong_type_names_key_and_types():
    with pytest.raises(ConfigError, match=r"\[train\]\.epochs must be int, got str"):
        validate_config({"model": {"layers": LAYERS}, "train": {"epochs": "ten"}})
    with pytest.raises(ConfigError, match=r"\[train\]\.lr must be int or float, got bool"):
        validate_config({"model": {"layers": LAYERS}, "train": {"lr": True}})


def test_missing_model_layers_is_required():
    with pytest.raises(ConfigError, match=r"\[model\]\.layers is required"):
        validate_config({})


def test_bad_toml_and_missing_file(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text("[train\nepochs = 3")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(p)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml")


def test_shipped_examples_are_valid():

    for path in sorted(examples_dir().glob("*.toml")):
        load_config(path)
