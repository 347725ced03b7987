"""Counts and physical quantities on the command line are refused when they make no sense,
instead of being sliced, ignored or silently replaced."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from snn2hw.cli import main


@pytest.mark.parametrize(
    "args",
    [
        ["simulate", "g.qgraph", "--samples", "-3"],
        ["simulate", "g.qgraph", "--samples", "0"],
        ["compare", "g.qgraph", "--samples", "-1"],
        ["energy", "g.qgraph", "--samples", "0"],
        ["report", "g.qgraph", "--samples", "0"],
        ["evaluate", "best.pt", "--samples", "0"],
        ["finetune", "best.pt", "-o", "x.pt", "--epochs", "0"],
        ["finetune", "best.pt", "-o", "x.pt", "--lr", "0"],
        ["train", "c.toml", "--epochs", "0"],
        ["export", "m.nir", "--dt", "0"],
        ["export", "m.nir", "--dt", "-0.001"],
        ["export", "m.nir", "--calib-samples", "0"],
        ["export", "m.nir", "--num-steps", "0"],
    ],
)
def test_nonsense_values_are_refused_before_any_work(args, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 2, r.output  # click's usage error
    assert "Invalid value" in r.output and "Traceback" not in r.output


def test_json_output_is_strict_json_with_nan_as_null(capsys):
    import json

    from snn2hw.cli import _emit

    _emit({"accuracy": float("nan"), "rows": [1.0, float("inf")], "n": 3}, True, "")
    out = capsys.readouterr().out
    assert "NaN" not in out and "Infinity" not in out
    assert json.loads(out) == {"accuracy": None, "rows": [1.0, None], "n": 3}


def test_train_json_is_parseable_while_progress_is_shown(tmp_path):
    import json

    r = CliRunner().invoke(main, ["train", "digits_lif", "--epochs", "1", "--device", "cpu",
                                  "--out", str(tmp_path / "run"), "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)  # progress lines went to stderr
    assert data["test"]["split"] == "test" and "epoch 1/1" in r.stderr


class _Evil:
    def __reduce__(self):
        return (print, ("unpickled",))


@pytest.mark.parametrize("args", [["evaluate", "{}"], ["export", "{}", "--target", "loihi"],
                                  ["finetune", "{}", "-o", "out.pt"]])
def test_the_trust_pickle_hint_names_a_flag_the_command_has(args, tmp_path, monkeypatch):
    import torch

    monkeypatch.chdir(tmp_path)
    torch.save({"payload": _Evil()}, tmp_path / "evil.pt")
    r = CliRunner().invoke(main, [a.format("evil.pt") for a in args])
    assert r.exit_code == 1 and "--trust-pickle" in r.output, r.output
    assert "unpickled" not in r.output
    help_text = CliRunner().invoke(main, [args[0], "--help"]).output
    assert "--trust-pickle" in help_text
