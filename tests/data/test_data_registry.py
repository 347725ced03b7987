"""Registry behaviour: names, options, data_dir resolution, error messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from snn2hw.common.errors import DatasetError
from snn2hw.data import available_datasets, load_dataset, resolve_data_dir

EXPECTED = {
    "digits",
    "mnist5k",
    "mnist1d",
    "mnist",
    "fashion-mnist",
    "cifar10",
    "nmnist",
    "synthetic-events",
}


def test_available_datasets_lists_every_dataset_with_a_one_line_description():
    names = available_datasets()
    assert EXPECTED <= set(names)
    assert all(desc and "\n" not in desc for desc in names.values())


def test_unknown_dataset_name_lists_the_known_ones():
    with pytest.raises(DatasetError) as err:
        load_dataset("imagenet")
    msg = str(err.value)
    assert "'imagenet'" in msg and "\n" not in msg
    assert all(name in msg for name in EXPECTED)


def test_unknown_option_is_refused_naming_the_accepted_ones():
    with pytest.raises(DatasetError, match=r"unknown option\(s\) n_frame;.*n_frames"):
        load_dataset("synthetic-events", n_frame=3)
    with pytest.raises(DatasetError, match="takes no options"):
        load_dataset("digits", binary=True)


def test_names_are_case_and_underscore_insensitive_and_aliases_resolve():
    ds = load_dataset("Synthetic_Events", n_train=10, n_test=10, n_frames=2, shape=(2, 8, 8))
    assert ds.name == "synthetic-events"
    ds = load_dataset("synthetic", n_train=10, n_test=10, n_frames=2, shape=(2, 8, 8))
    assert ds.name == "synthetic-events"


def test_data_dir_defaults_to_env_variable_then_dot_data(monkeypatch, tmp_path):
    monkeypatch.setenv("SNN2HW_DATA_DIR", str(tmp_path))
    assert resolve_data_dir(None) == tmp_path.resolve()
    monkeypatch.delenv("SNN2HW_DATA_DIR")
    monkeypatch.chdir(tmp_path)
    assert resolve_data_dir(None) == (tmp_path / "data").resolve()
    assert resolve_data_dir("rel") == (tmp_path / "rel").resolve()


def test_file_based_loader_uses_env_data_dir_in_its_message(monkeypatch, tmp_path):
    monkeypatch.setenv("SNN2HW_DATA_DIR", str(tmp_path))
    with pytest.raises(DatasetError) as err:
        load_dataset("mnist")
    assert str(Path(tmp_path).resolve()) in str(err.value)


def test_non_integer_seed_is_refused():
    with pytest.raises(DatasetError, match="seed"):
        load_dataset("digits", seed="0")
