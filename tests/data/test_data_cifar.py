"""CIFAR-10 python batches: loading, and refusing pickles that would run code."""

from __future__ import annotations

import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from snn2hw.common.errors import DatasetError
from snn2hw.data import load_dataset, read_cifar_batch

BATCHES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


class Py2StylePickler(pickle._Pickler):
    """Writes every str/bytes as a Python 2 ``str`` (BINSTRING), like the original files."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_str8(self, obj):
        data = obj.encode("latin1") if isinstance(obj, str) else obj
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[str] = save_str8
    dispatch[bytes] = save_str8


def batch_dict(n: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {
        b"batch_label": b"training batch",
        b"labels": [int(v) for v in rng.integers(0, 10, n)],
        b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        b"filenames": [b"img_%d.png" % i for i in range(n)],
    }


def write_cifar(folder: Path, n: int = 4, py2: bool = False) -> dict[str, dict]:
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for i, name in enumerate(BATCHES):
        d = batch_dict(n, i)
        with open(folder / name, "wb") as fh:
            if py2:
                Py2StylePickler(fh, protocol=2).dump(d)
            else:
                pickle.dump(d, fh, protocol=2)
        written[name] = d
    return written


@pytest.mark.parametrize("py2", [False, True])
def test_cifar10_loads_batches_as_channel_major_images(tmp_path, py2):
    written = write_cifar(tmp_path / "cifar-10-batches-py", py2=py2)
    ds = load_dataset("cifar10", tmp_path)
    assert ds.x_train.shape == (20, 3, 32, 32) and ds.x_test.shape == (4, 3, 32, 32)
    assert ds.input_shape == (3, 32, 32) and ds.x_train.dtype == np.float32
    assert ds.y_train.dtype == np.int64
    first = written["data_batch_1"][b"data"][0]
    # Row layout: 1024 red, then 1024 green, then 1024 blue values, each row-major 32x32.
    np.testing.assert_allclose(ds.x_train[0, 1] * 255, first[1024:2048].reshape(32, 32), atol=1e-3)
    np.testing.assert_array_equal(ds.y_test, written["test_batch"][b"labels"])


def test_cifar10_accepts_batches_directly_in_data_dir(tmp_path):
    write_cifar(tmp_path)
    assert len(load_dataset("cifar10", tmp_path).y_train) == 20


class _RunsShell:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("protocol", [2, 4])
def test_malicious_pickle_is_refused_without_executing(tmp_path, protocol):
    marker = tmp_path / "pwned"
    path = tmp_path / "data_batch_1"
    payload = {b"data": _RunsShell(marker), b"labels": [0]}
    path.write_bytes(pickle.dumps(payload, protocol=protocol))
    with pytest.raises(DatasetError) as err:
        read_cifar_batch(path)
    assert not marker.exists()
    msg = str(err.value)
    assert str(path) in msg and "system" in msg and "refusing" in msg


@pytest.mark.parametrize(
    "module,name", [("builtins", "eval"), ("numpy", "load"), ("_codecs", "decode")]
)
def test_any_other_global_is_refused(tmp_path, module, name):
    path = tmp_path / "test_batch"
    path.write_bytes(b"\x80\x02c" + f"{module}\n{name}\n".encode() + b"X\x01\x00\x00\x001\x85R.")
    with pytest.raises(DatasetError, match=f"{module}.{name}"):
        read_cifar_batch(path)


def test_codecs_encode_is_limited_to_latin1(tmp_path):
    path = tmp_path / "test_batch"
    # _codecs.encode('abc', 'rot13'): the global is allowed, the codec is not.
    path.write_bytes(b"\x80\x02c_codecs\nencode\nX\x03\x00\x00\x00abcX\x05\x00\x00\x00rot13\x86R.")
    with pytest.raises(DatasetError, match="rot13"):
        read_cifar_batch(path)


def test_truncated_batch_is_refused_naming_the_file(tmp_path):
    write_cifar(tmp_path)
    path = tmp_path / "data_batch_3"
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DatasetError, match="data_batch_3 is not a valid CIFAR-10 batch"):
        load_dataset("cifar10", tmp_path)


def test_batch_with_wrong_content_is_refused(tmp_path):
    path = tmp_path / "test_batch"
    path.write_bytes(pickle.dumps({b"data": np.zeros((2, 10), np.uint8), b"labels": [0, 1]}, 2))
    with pytest.raises(DatasetError, match="expected 3072"):
        read_cifar_batch(path)
    path.write_bytes(pickle.dumps([1, 2, 3], 2))
    with pytest.raises(DatasetError, match="expected a dict"):
        read_cifar_batch(path)


def test_missing_batch_names_file_and_folders(tmp_path):
    write_cifar(tmp_path)
    (tmp_path / "data_batch_5").unlink()
    with pytest.raises(DatasetError) as err:
        load_dataset("cifar10", tmp_path)
    assert "'data_batch_5' not found in" in str(err.value)
    assert str(tmp_path.resolve()) in str(err.value)
