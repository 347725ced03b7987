"""The float model of a quantized graph is read only from its own, unchanged NIR file."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "backends"))
from qgraph_builders import dense, lif, make_graph  # noqa: E402

from snn2hw.common.atomic_io import file_sha256  # noqa: E402
from snn2hw.common.errors import Snn2hwError  # noqa: E402
from snn2hw.pipeline.float_model import nir_path_for  # noqa: E402
from snn2hw.quant.qgraph import InputNode  # noqa: E402


@pytest.fixture
def artifact(tmp_path, external):
    nir_file = tmp_path / "model.nir"
    shutil.copy(external / "nir-paper" / "01_lif" / "lif_norse.nir", nir_file)
    g = make_graph([InputNode("in", (1,)), dense("d", np.ones((1, 1))), lif("l", 1)],
                   [("in", "d"), ("d", "l")])
    g.metadata.update({"nir_file": "model.nir", "nir_sha256": file_sha256(nir_file)})
    return g, tmp_path


def test_the_recorded_nir_file_is_found(artifact):
    g, folder = artifact
    assert nir_path_for(g, folder) == folder / "model.nir"


def test_a_nir_file_from_another_export_is_refused(artifact):
    g, folder = artifact
    with open(folder / "model.nir", "ab") as fh:  # a new export's NIR beside the old qgraph
        fh.write(b"\0")
    with pytest.raises(Snn2hwError, match="not the NIR file this quantized graph was made from"):
        nir_path_for(g, folder)


@pytest.mark.parametrize("name", ["../model.nir", "/etc/passwd", "sub/model.nir", ".."])
def test_metadata_cannot_point_outside_the_artifact_folder(artifact, name):
    g, folder = artifact
    g.metadata["nir_file"] = name
    with pytest.raises(Snn2hwError, match="only a file name"):
        nir_path_for(g, folder)
