"""The comparator catches a fault in any one backend, and says where.

Five faults (one effective-weight LSB, threshold - 1, du - 1, one input spike flipped in one
sample, one extra step of delay on one layer; see ``fault_injection.py``) are injected in
turn into each of the four integer backends (torch-int, event, Lava, ONNX): 20 cells. In
every cell ``snn2hw compare`` (the CLI, on a saved ``.qgraph`` with its recorded inputs)
must exit 2 and report the first divergence -- sample, step, layer, neuron, and both
backends' spike, u and v there -- in the text output, compare.json and compare.md, and
the raster must circle it. The expected first divergence is worked out independently in
``fault_injection.expected_first_divergence`` and each fault is first shown to change a
spike at all (a fault that changes nothing would make the cell prove nothing).

The fault enters through the registry: ``registry.get`` is the one lookup through which
every pipeline stage reaches a backend, so the test replaces it (``monkeypatch``) with one
that returns the faulty wrapper for the named backend and the real one for the others. No
library code knows about faults.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from fault_injection import (
    FAULTS,
    INPUT_FLIP,
    effective_lsb,
    expected_first_divergence,
    faulty_graph,
    fixed_graph,
    fixed_inputs,
    registry_with_fault,
)

from snn2hw.backends import event, registry
from snn2hw.cli import main
from snn2hw.pipeline.compare import Divergence, compare
from snn2hw.pipeline.samples import SampleSpec
from snn2hw.quant.inputs import InputFormat
from snn2hw.quant.qgraph import (
    ConvNode,
    DenseNode,
    FlattenNode,
    InputNode,
    LIFNode,
    OutputNode,
    QGraph,
)
from snn2hw.reporting import plots

BACKENDS = ("torch-int", "event", "lava", "onnx")


def _needs(name: str) -> None:
    if name not in registry.available():
        pytest.skip(f"backend {name} not installed: {registry.install_hint(name)}")


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> tuple[str, np.ndarray]:
    """The fixed graph saved as a .qgraph whose metadata records its inputs (a .npy)."""
    d = tmp_path_factory.mktemp("faults")
    x = fixed_inputs()
    np.save(d / "frames.npy", x)
    g = fixed_graph()
    g.metadata = {"samples": SampleSpec(inputs_file="frames.npy").to_dict(),
                  "input_format": InputFormat(0, 1.0).to_dict()}
    g.save(d / "fixed.qgraph")
    return str(d / "fixed.qgraph"), x


@pytest.fixture(scope="module")
def expected() -> dict[str, dict]:
    g, x = fixed_graph(), fixed_inputs()
    return {f: expected_first_divergence(g, x, f) for f in FAULTS}


def test_the_fixed_graph_and_inputs_are_what_the_faults_rely_on():
    g, x = fixed_graph(), fixed_inputs()
    r = event.run(g, x, num_steps=g.num_steps + g.depth(), record_state=True)
    # sample 1, neuron 0 of h: v lands exactly on the threshold at step 3 (strict: no spike)
    assert list(r.u["h"][1:4, 1, 0]) == [12288, 21504, 28416]
    assert list(r.v["h"][1:4, 1, 0]) == [12288, 30720, 51456] and 51456 == 804 << 6
    assert r.spikes["h"][:4, 1, 0].sum() == 0 and r.spikes["h"][4, 1, 0] == 1
    assert len({x[:, b].tobytes() for b in range(x.shape[1])}) == x.shape[1]  # distinct
    assert effective_lsb(g.nodes["d1"]) == 1 and effective_lsb(g.nodes["rec"]) == 2
    sample, frame, neuron = INPUT_FLIP
    assert x[frame, sample, neuron] == 0  # the flip adds an input spike


@pytest.mark.parametrize("fault", FAULTS)
def test_each_fault_changes_spikes_in_the_reference_arithmetic(fault, expected):
    e = expected[fault]
    assert e["changed_spikes"] > 0 and e["spike"][0] != e["spike"][1]
    if fault == "delay":  # h integrates frame k at step k + 2: o's spikes move too
        g = fixed_graph()
        n = g.num_steps + g.depth()
        a = event.run(g, fixed_inputs(), num_steps=n)
        b = event.run(faulty_graph(g, "delay"), fixed_inputs(), num_steps=n)
        assert not np.array_equal(a.spikes["o"], b.spikes["o"])
        assert b.spikes["h"][:2].sum() == 0  # nothing reaches h before step 2
        assert (e["sample"], e["step"], e["layer"], e["neuron"]) == (2, 2, "h", 1)
    else:  # the designed boundary: sample 1, step 3, h neuron 0 fires only when faulty
        assert (e["sample"], e["step"], e["layer"], e["neuron"]) == (1, 3, "h", 0)
        assert e["spike"] == (0, 1) and e["u"][0] == 28416 and e["v"] == (51456, 0)
        assert e["u"][1] > e["u"][0] or fault == "threshold"


def _reference_for(bad: str) -> str:
    return "torch-int" if bad == "event" else "event"


@pytest.mark.parametrize("bad", BACKENDS)
@pytest.mark.parametrize("fault", FAULTS)
def test_a_fault_in_one_backend_fails_compare_at_its_first_divergence(
    fault, bad, saved, expected, tmp_path, monkeypatch
):
    _needs(bad)
    path, x = saved
    ref = _reference_for(bad)
    monkeypatch.setattr(registry, "get", registry_with_fault(registry.get, bad, fault, x))
    figures = []
    real_figure = plots.raster_figure

    def spy(*args, **kwargs):
        fig = real_figure(*args, **kwargs)
        figures.append((args, kwargs, fig))
        return fig

    monkeypatch.setattr(plots, "raster_figure", spy)
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["compare", path, "--backends", f"{ref},{bad}", "--samples",
                                  "3", "--device", "cpu", "--no-report", "-o", str(out)])
    assert r.exit_code == 2, r.output
    e = expected[fault]
    want = Divergence(e["sample"], e["step"], e["layer"], e["neuron"], ref, bad,
                      e["spike"], e["u"], e["v"], (e["neuron"],))
    # text output
    assert want.describe() in r.output
    assert (f"sample {e['sample']}, step {e['step']}, layer '{e['layer']}', neuron "
            f"{e['neuron']}: spike {ref}={e['spike'][0]} {bad}={e['spike'][1]}, "
            f"u {ref}={e['u'][0]} {bad}={e['u'][1]}, v {ref}={e['v'][0]} {bad}={e['v'][1]}"
            ) in r.output
    # compare.json
    data = json.loads((out / "compare.json").read_text())
    assert data["integer_backends_equal"] is False and len(data["divergences"]) == 1
    got = data["divergences"][0]
    assert got == json.loads(json.dumps(want.to_dict()))
    # compare.md: the table row and the sentence
    md = (out / "compare.md").read_text()
    assert "## First divergence" in md and want.describe() in md
    assert (f"| {ref} / {bad} | {e['sample']} | {e['step']} | {e['layer']} | {e['neuron']} | "
            f"{e['spike'][0]} / {e['spike'][1]} | {e['u'][0]} / {e['u'][1]} | "
            f"{e['v'][0]} / {e['v'][1]} |") in md
    # the raster: the diverging sample, one red circle in the layer's panel at (step, neuron)
    assert (out / "compare_raster.png").stat().st_size > 0
    (args, kwargs, fig), = figures
    assert args[1] == e["sample"] and kwargs["mark"] == (e["step"], e["layer"], e["neuron"])
    layers = list(args[0])
    marks = [(ax, a) for ax in fig.axes for a in ax.collections if a.get_gid() == plots.MARK_GID]
    assert len(marks) == 1
    ax, circle = marks[0]
    assert fig.axes.index(ax) == layers.index(e["layer"])
    assert circle.get_offsets().tolist() == [[e["step"], e["neuron"]]]


def test_the_same_backends_unfaulted_agree_and_compare_exits_0(saved, tmp_path):
    """The control: without a fault every backend agrees, so the 20 failures above come
    from the faults alone."""
    path, _ = saved
    names = [b for b in BACKENDS if b in registry.available()]
    r = CliRunner().invoke(main, ["compare", path, "--backends", ",".join(names), "--samples",
                                  "3", "--device", "cpu", "--no-report", "-o", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert "integer backends agree on every spike" in r.output
    data = json.loads((tmp_path / "compare.json").read_text())
    assert data["divergences"] == [] and all(
        v == 1.0 for layers in data["agreement"].values() for v in layers.values())


def _conv_graph() -> tuple[QGraph, np.ndarray]:
    """x (1, 4, 4) -> 3x3 conv (2 channels) -> l1 (2, 4, 4) -> flatten -> dense -> o. With
    all-one weights and ``du = dv = 4095``, v of channel 0 is ``64 * (active inputs in the
    window)``, so vth = 3 puts a window of three active inputs exactly on the threshold."""
    z = np.zeros((2, 4, 4), np.int64)
    nodes = [
        InputNode("x", (1, 4, 4), message_bits=0),
        ConvNode("c", np.stack([np.ones((1, 3, 3)), 2 * np.ones((1, 3, 3))]).astype(np.int64),
                 (1, 4, 4), weight_exp=0, padding=(1, 1)),
        LIFNode("l1", (2, 4, 4), du=4095, dv=4095, vth=3, bias_mant=z, bias_exp=z.copy()),
        FlattenNode("f", (2, 4, 4)),
        DenseNode("d", np.ones((2, 32), np.int64), 0, 8),
        LIFNode("o", (2,), du=4095, dv=4095, vth=1, bias_mant=np.zeros(2, np.int64),
                bias_exp=np.zeros(2, np.int64)),
        OutputNode("out", (2,)),
    ]
    edges = [("x", "c"), ("c", "l1"), ("l1", "f"), ("f", "d"), ("d", "o"), ("o", "out")]
    g = QGraph({n.name: n for n in nodes}, edges, 1e-3, "loihi", 3).validate()
    x = (np.random.default_rng(4).random((3, 2, 1, 4, 4)) < 0.3).astype(np.int64)
    return g, x


def test_compare_names_the_neuron_of_a_multi_dimensional_layer(tmp_path, monkeypatch):
    """A conv layer: the flat neuron index and its (channel, y, x) index."""
    g, x = _conv_graph()
    g.metadata = {"samples": SampleSpec(inputs_file="x.npy").to_dict(),
                  "input_format": InputFormat(0, 1.0).to_dict()}
    np.save(tmp_path / "x.npy", x)
    g.save(tmp_path / "c.qgraph")
    real_get = registry.get

    class LowerThreshold:
        def __init__(self, inner):
            self.inner = inner
            for a in ("name", "node_kinds", "records_state", "uses_device", "counts_activity",
                      "splits_batches"):
                setattr(self, a, getattr(inner, a))

        def prepare(self, graph: QGraph, device: str = "cpu"):
            import copy

            g2 = copy.deepcopy(graph)
            g2.nodes["l1"].vth -= 1
            return self.inner.prepare(g2, device)

    monkeypatch.setattr(registry, "get", lambda n: LowerThreshold(real_get(n))
                        if n == "torch-int" else real_get(n))
    res = compare(tmp_path / "c.qgraph", ["event", "torch-int"], 2)
    (d,) = res.divergences
    shape = g.nodes[d.layer].shape
    assert len(shape) == 3 and d.index == tuple(np.unravel_index(d.neuron, shape))
    assert f"neuron {d.neuron} (index {d.index})" in d.describe()
    assert d.u is not None and d.u[0] == d.u[1] and d.v[1] == 0  # same u; v reset by the spike


def test_raster_figure_draws_one_marker_where_asked():
    spikes = {"a": np.zeros((5, 2, 3), np.uint8), "b": np.zeros((5, 2, 2, 2), np.uint8)}
    fig = plots.raster_figure(spikes, 1, mark=(4, "b", 3))
    marks = [(i, c) for i, ax in enumerate(fig.axes) for c in ax.collections
             if c.get_gid() == plots.MARK_GID]
    assert [(i, c.get_offsets().tolist()) for i, c in marks] == [(1, [[4, 3]])]
    assert not [c for c in plots.raster_figure(spikes, 0).axes[0].collections
                if c.get_gid() == plots.MARK_GID]
    with pytest.raises(ValueError, match="mark names layer 'zz'"):
        plots.raster_figure(spikes, 0, mark=(0, "zz", 0))
