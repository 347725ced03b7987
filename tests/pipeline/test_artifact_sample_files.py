"""An export's --inputs/--labels travel with the artifact: metadata names copies inside the
export folder (by file name and SHA-256), so simulate/compare read the same samples from any
working directory, and metadata never makes them read outside the folder."""

from __future__ import annotations

import json
import os
import zipfile

import numpy as np
import pytest

from snn2hw.common.errors import DatasetError
from snn2hw.pipeline.export import export
from snn2hw.pipeline.samples import SampleSpec
from snn2hw.pipeline.simulate import graph_samples, simulate_artifact
from snn2hw.quant.qgraph import QGraph


@pytest.fixture
def exported(tmp_path, external, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    rng = np.random.default_rng(0)
    np.save("x.npy", (rng.random((40, 3, 1)) < 0.5).astype(np.float32))
    np.save("y.npy", np.array([0, 0, 0]))
    res = export(external / "nir-paper/01_lif/lif_norse.nir", "loihi", tmp_path / "out",
                 dt=1e-4, convention="norse",
                 spec=SampleSpec(inputs_file="x.npy", labels_file="y.npy"), calib_samples=3)
    return res, work


def test_inputs_are_copied_into_the_artifact_and_named_relative_to_it(exported):
    res, work = exported
    g = QGraph.load(res.qgraph_path)
    s = g.metadata["samples"]
    assert s["inputs_file"] == "lif_norse.inputs.npy"
    assert s["labels_file"] == "lif_norse.labels.npy"
    assert (res.out_dir / "lif_norse.inputs.npy").is_file()
    np.testing.assert_array_equal(np.load(res.out_dir / "lif_norse.inputs.npy"),
                                  np.load(work / "x.npy"))


def test_simulate_from_another_directory_reads_the_same_inputs(exported, tmp_path, monkeypatch):
    res, work = exported
    here = simulate_artifact(res.qgraph_path, "event", 3)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    (work / "x.npy").unlink()  # the original is gone: only the artifact's copy remains
    there = simulate_artifact(res.qgraph_path, "event", 3)
    assert there.layers == here.layers and there.accuracy == here.accuracy


def _rewrite_samples(path, **changes):
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    header = json.loads(members["graph.json"])
    header["metadata"]["samples"].update(changes)
    members["graph.json"] = json.dumps(header).encode()
    os.unlink(path)
    with zipfile.ZipFile(path, "w") as zf:
        for n, data in members.items():
            zf.writestr(n, data)


@pytest.mark.parametrize("name", ["../x.npy", "/etc/passwd", "sub/x.npy"])
def test_metadata_naming_a_file_outside_the_artifact_is_refused(exported, name):
    res, _ = exported
    _rewrite_samples(res.qgraph_path, inputs_file=name)
    with pytest.raises(DatasetError, match="outside its own folder"):
        graph_samples(QGraph.load(res.qgraph_path), 1)


def test_a_changed_inputs_copy_is_refused(exported):
    res, _ = exported
    np.save(res.out_dir / "lif_norse.inputs.npy", np.zeros((40, 3, 1), np.float32))
    with pytest.raises(DatasetError, match="SHA-256 differs"):
        graph_samples(QGraph.load(res.qgraph_path), 1)
