import pickle

import pytest
import torch

from snn2hw.common.errors import CheckpointError
from snn2hw.nn.model import SpikingNet
from snn2hw.training.checkpoint import Checkpoint, load_checkpoint, save_checkpoint

ARCH = {"input_shape": [4], "layers": [{"type": "linear", "out": 3}, {"type": "neuron"}]}


def _ckpt() -> Checkpoint:
    m = SpikingNet(ARCH)
    return Checkpoint(arch=ARCH, state_dict=m.state_dict(), epoch=2, metrics={"a": 1.0})


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_round_trip_restores_architecture_and_weights(tmp_path, suffix):
    ck = _ckpt()
    path = tmp_path / f"m{suffix}"
    save_checkpoint(path, ck)
    back = load_checkpoint(path)
    assert back.arch == ARCH and back.epoch == 2
    m = back.build_model()
    for k, v in ck.state_dict.items():
        assert torch.equal(m.state_dict()[k], v)


def test_pt_checkpoint_loads_with_weights_only(tmp_path):
    path = tmp_path / "m.pt"
    save_checkpoint(path, _ckpt())
    obj = torch.load(path, weights_only=True)
    assert obj["format"] == "snn2hw.checkpoint"


def test_corrupt_checkpoint_is_a_one_line_error(tmp_path):
    path = tmp_path / "m.pt"
    save_checkpoint(path, _ckpt())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(path)


class Evil:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned > /dev/null",))


def test_pickled_objects_are_refused_without_trust_flag(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": "snn2hw.checkpoint", "payload": Evil()}, path)
    with pytest.raises(CheckpointError, match="--trust-pickle"):
        load_checkpoint(path)


def test_pickled_full_module_is_refused_then_accepted_with_trust(tmp_path):
    path = tmp_path / "full.pt"
    torch.save(SpikingNet(ARCH), path)
    with pytest.raises(CheckpointError, match="trust-pickle"):
        load_checkpoint(path)
    ck = load_checkpoint(path, trust_pickle=True)
    assert ck.arch == ARCH


def test_unknown_architecture_is_named(tmp_path):
    path = tmp_path / "m.pt"
    arch = {"input_shape": [4], "layers": [{"type": "transformer"}, {"type": "neuron"}]}
    save_checkpoint(path, Checkpoint(arch=arch, state_dict={}))
    with pytest.raises(CheckpointError, match="unknown layer type 'transformer'"):
        load_checkpoint(path).build_model(str(path))


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_architecture_and_weights_that_disagree_in_shape_are_a_one_line_error(tmp_path, suffix):
    # e.g. one flipped digit in a .safetensors header: "out": 3 read as "out": 7
    path = tmp_path / f"m{suffix}"
    wider = {**ARCH, "layers": [{"type": "linear", "out": 7}, {"type": "neuron"}]}
    save_checkpoint(path, Checkpoint(arch=wider, state_dict=SpikingNet(ARCH).state_dict()))
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path).build_model(str(path))
    msg = str(err.value)
    assert "'layers.0." in msg and "needs [7" in msg and "corrupt or was edited" in msg
    assert "\n" not in msg


def test_a_weight_that_is_not_a_tensor_is_a_one_line_error(tmp_path):
    path = tmp_path / "m.pt"
    save_checkpoint(path, _ckpt())
    payload = torch.load(path, weights_only=True)
    payload["state_dict"]["layers.0.bias"] = 3  # weights-only loading accepts plain numbers
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="'layers.0.bias' is a int, not a tensor"):
        load_checkpoint(path).build_model(str(path))


def test_foreign_file_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "m.pt"
    torch.save({"weights": torch.zeros(2)}, path)
    with pytest.raises(CheckpointError, match="not a snn2hw checkpoint"):
        load_checkpoint(path)
    raw = tmp_path / "raw.pt"
    raw.write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(CheckpointError):
        load_checkpoint(raw)


def test_files_of_other_kinds_are_named_not_called_pickles(tmp_path):
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    nir_file = root / "tests" / "reference_data" / "nir-paper" / "01_lif" / "lif_norse.nir"
    netx = root / "tests" / "reference_data" / "lava-dl-netx" / "tinynet" / "tiny.net"
    toml = root / "snn2hw" / "examples" / "digits_lif.toml"
    for path, words in ((nir_file, "a NIR graph (HDF5)"), (netx, "a lava-dl netx network"),
                        (toml, "a text file (a TOML training config?)")):
        with pytest.raises(CheckpointError) as err:
            load_checkpoint(path)
        assert words in str(err.value) and "pickle" not in str(err.value), err.value
    qg = tmp_path / "g.qgraph"
    import sys

    sys.path.insert(0, str(root / "tests" / "quant"))
    from qgraph_samples import two_layer_dense_graph

    two_layer_dense_graph().save(qg)
    with pytest.raises(CheckpointError, match="a snn2hw quantized graph"):
        load_checkpoint(qg)
