"""A small NIR network and its inputs for the deployment-check and compare tests (imported
as a plain module: pytest puts this folder on sys.path).

``write_mlp`` writes ``8 inputs -> 24 LIF -> 4 LIF`` (nir.Affine + nir.LIF, read with the
snnTorch convention, hard reset) and Bernoulli input frames; ``labels`` are the float path's own
decisions, so the float accuracy is 1.0 and any integer decision that moves is an accuracy
drop. Everything is seeded: the same files every run.
"""

from __future__ import annotations

from pathlib import Path

import nir
import numpy as np

STEPS, SAMPLES, N_IN, N_HID, N_OUT = 40, 32, 8, 24, 4
CONVENTION = "snntorch:reset=zero,reset_delay=false"  # Leaky with a hard reset: exact on loihi
GAIN = 0.2  # per-step input gain 1 (snnTorch), beta 0.99: ~13 % hidden, ~11 % output rate


def _lif(n: int) -> nir.LIF:
    # as snnTorch writes a Leaky(beta=0.99) at dt = 1e-4: tau = dt / (1 - beta), r = tau / dt
    return nir.LIF(tau=np.full(n, 1e-2), r=np.full(n, 100.0), v_leak=np.zeros(n),
                   v_threshold=np.ones(n), v_reset=np.zeros(n))


def mlp(scale: float = 1.0, seed: int = 0) -> nir.NIRGraph:
    """The network; ``scale`` multiplies every weight (0: a silent network)."""
    rng = np.random.default_rng(seed)
    w1 = (rng.normal(0.35, 0.3, (N_HID, N_IN)) * GAIN * scale).astype(np.float32)
    w2 = (rng.normal(0.3, 0.3, (N_OUT, N_HID)) * GAIN * scale).astype(np.float32)
    return nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([N_IN])}),
            "fc1": nir.Affine(weight=w1, bias=np.zeros(N_HID, np.float32)),
            "lif1": _lif(N_HID),
            "fc2": nir.Affine(weight=w2, bias=np.zeros(N_OUT, np.float32)),
            "lif2": _lif(N_OUT),
            "output": nir.Output(output_type={"output": np.array([N_OUT])}),
        },
        edges=[("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"),
               ("lif2", "output")],
    )


def frames(seed: int = 1) -> np.ndarray:
    """Binary input frames ``[STEPS, SAMPLES, N_IN]`` (30 % spikes)."""
    return (np.random.default_rng(seed).random((STEPS, SAMPLES, N_IN)) < 0.3).astype(np.float32)


def write_mlp(folder: Path, scale: float = 1.0, labels: bool = True) -> dict[str, Path]:
    """The NIR file, the input frames and (with ``labels``) the float path's decisions as
    labels, in ``folder``: ``{"nir", "inputs", "labels"}``."""
    import torch

    from snn2hw.common.readout import classify
    from snn2hw.nir import NIRNet, resolve_timing

    folder.mkdir(parents=True, exist_ok=True)
    g = mlp(scale)
    paths = {"nir": folder / "mlp.nir", "inputs": folder / "x.npy"}
    nir.write(str(paths["nir"]), g)
    x = frames()
    np.save(paths["inputs"], x)
    if labels:
        dt, conv, _ = resolve_timing(g, None, CONVENTION)
        with torch.no_grad():
            out = NIRNet(g, dt, conv).eval()(torch.from_numpy(x))
        paths["labels"] = folder / "y.npy"
        np.save(paths["labels"], np.asarray(classify(out)).astype(np.int64))
    return paths
