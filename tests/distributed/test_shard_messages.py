"""Shards and results cross ranks as pickle-free messages: what one rank sends, the other
reads back exactly, and bytes that are not such a message (a pickle, an object array) are
refused without running anything."""

from __future__ import annotations

import io
import pickle
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from snn2hw.backends import registry
from snn2hw.pipeline.shard_messages import (
    Job,
    ShardMessageError,
    decode_job,
    decode_result,
    encode_job,
    encode_result,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pipeline"))
from fault_injection import fixed_graph, fixed_inputs  # noqa: E402


def test_a_job_arrives_as_it_was_sent():
    g, x = fixed_graph(), fixed_inputs()
    job = decode_job(encode_job(Job("event", g, x, 7, "cpu", True, 16)))
    assert (job.backend, job.num_steps, job.device, job.record_state, job.batch_size) == (
        "event", 7, "cpu", True, 16)
    assert np.array_equal(job.ints, x) and job.ints.dtype == x.dtype
    assert list(job.graph.nodes) == list(g.nodes) and job.graph.edges == g.edges
    for name, node in g.nodes.items():
        w = getattr(node, "weight", None)
        if w is not None:
            assert np.array_equal(job.graph.nodes[name].weight, w)


def test_a_result_with_state_and_counters_arrives_as_it_was_sent():
    g, x = fixed_graph(), fixed_inputs()
    res = registry.get("event").run(g, x, record_state=True)
    back = decode_result(encode_result(res))
    assert back.backend == res.backend and back.wall_s == res.wall_s
    for traces in ("spikes", "u", "v"):
        for k, a in getattr(res, traces).items():
            b = getattr(back, traces)[k]
            assert np.array_equal(a, b) and a.dtype == b.dtype, (traces, k)
    for key, per_layer in res.counters.as_dict().items():
        for layer, val in per_layer.items():
            assert np.array_equal(getattr(back.counters, key)[layer], val), (key, layer)


class _Evil:
    def __reduce__(self):
        return (print, ("unpickled",))


def test_a_pickle_is_refused_without_being_unpickled(capsys):
    data = pickle.dumps(_Evil())
    for decode in (decode_job, decode_result):
        with pytest.raises(ShardMessageError, match="damaged"):
            decode(data)
    assert "unpickled" not in capsys.readouterr().out


def test_an_object_array_inside_a_message_is_refused():
    good = encode_result(registry.get("event").run(fixed_graph(), fixed_inputs()))
    src = zipfile.ZipFile(io.BytesIO(good))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name in src.namelist():
            data = src.read(name)
            if name == "a0.npy":  # the first spike array becomes a pickled object array
                buf = io.BytesIO()
                np.save(buf, np.array([_Evil()], dtype=object), allow_pickle=True)
                data = buf.getvalue()
            zf.writestr(name, data)
    with pytest.raises(ShardMessageError, match="a0.npy"):
        decode_result(out.getvalue())


def test_a_job_message_is_not_taken_for_a_result():
    data = encode_job(Job("event", fixed_graph(), fixed_inputs(), None, "cpu", False, 8))
    with pytest.raises(ShardMessageError, match="expected a result message"):
        decode_result(data)
