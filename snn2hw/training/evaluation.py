"""Evaluate a trained checkpoint on its dataset's test split."""

from __future__ import annotations

from pathlib import Path

from snn2hw.training.checkpoint import load_checkpoint
from snn2hw.training.config import validate_config
from snn2hw.training.train import EvalResult, evaluate, make_encoder, resolve_device


def evaluate_checkpoint(
    path: str | Path,
    *,
    device: str = "auto",
    samples: int | None = None,
    data_dir: str | None = None,
    trust_pickle: bool = False,
) -> EvalResult:
    """Load ``path`` safely, rebuild its model and data pipeline, report test metrics."""
    from snn2hw.data import load_dataset

    ck = load_checkpoint(path, trust_pickle=trust_pickle)
    cfg = validate_config(ck.config or {"model": {"layers": ck.arch["layers"]}}, str(path))
    model = ck.build_model(str(path))
    dev = resolve_device(device)
    model.to(dev)
    ds = load_dataset(
        cfg["data"]["dataset"],
        data_dir or cfg["data"]["data_dir"] or None,
        seed=cfg["experiment"]["seed"],
        **cfg["data"]["options"],
    )
    x, y = ds.x_test, ds.y_test
    if samples is not None:
        x, y = x[:samples], y[:samples]
    num_steps = ds.x_train.shape[1] if ds.temporal else int(cfg["train"]["num_steps"])
    return evaluate(
        model,
        x,
        y,
        encoder=make_encoder(cfg, ds.temporal),
        num_steps=num_steps,
        device=dev,
        seed=cfg["experiment"]["seed"] + 3,
    )
