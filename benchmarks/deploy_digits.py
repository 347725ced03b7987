"""The deployment figures for the digits models, end to end, one run:

    .venv/bin/python benchmarks/deploy_digits.py [--models digits_lif,digits_srm,...]
        [--qat-epochs 3] [--out build/deploy_digits] [--json results.json]

For each example config: train (full length) -> export for loihi -> torch-int and event on
the whole test split (360 samples, spike for spike) and Lava on 50 samples -> float, PTQ
(integer) accuracy; then QAT fine-tuning and its integer accuracy. Prints one table.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from snn2hw.pipeline.compare import compare
from snn2hw.pipeline.export import export
from snn2hw.pipeline.finetune import integer_accuracy
from snn2hw.training.config import load_config
from snn2hw.training.qat import finetune
from snn2hw.training.train import train

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="digits_lif,digits_srm,digits_conv,digits_spikeseq")
    ap.add_argument("--qat-epochs", type=int, default=3)
    ap.add_argument("--lava-samples", type=int, default=50)
    ap.add_argument("--out", default="build/deploy_digits")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    rows = []
    for name in args.models.split(","):
        out = Path(args.out) / name
        cfg = load_config(EXAMPLES / f"{name}.toml")
        cfg["experiment"]["device"] = "cpu"
        t0 = time.monotonic()
        res = train(cfg, out_dir=out / "train", progress=False)
        train_s = time.monotonic() - t0
        exp = export(res.best_checkpoint, "loihi", out / "export")
        full = compare(exp.qgraph_path, ["torch-int", "event"], 10_000)
        lava = compare(exp.qgraph_path, ["event", "lava"], args.lava_samples)
        qat = finetune(res.best_checkpoint, "loihi", out / "qat.pt", epochs=args.qat_epochs,
                       progress=False, integer_accuracy=integer_accuracy)
        row = {
            "model": name,
            "train_s": train_s,
            "float_acc": res.test.accuracy,
            "ptq_acc": full.accuracy["torch-int"],
            "qat_acc": qat.qat_accuracy,
            "samples_int": full.samples,
            "torch_int_eq_event": full.integer_equal,
            "lava_samples": lava.samples,
            "lava_eq_event": lava.integer_equal,
            "lava_acc": lava.accuracy["lava"],
            "event_acc_same_samples": lava.accuracy["event"],
            "cores": exp.report["resources"]["total_cores"],
        }
        rows.append(row)
        print(json.dumps(row, default=float), flush=True)
    print("| model | train s | float | PTQ (int) | QAT (int) | torch-int = event | Lava = event "
          "| Lava acc | cores |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['train_s']:.0f} | {r['float_acc']:.4f} | {r['ptq_acc']:.4f} | "
              f"{r['qat_acc']:.4f} | {r['torch_int_eq_event']} ({r['samples_int']} samples) | "
              f"{r['lava_eq_event']} ({r['lava_samples']}) | {r['lava_acc']:.4f} | {r['cores']} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2, default=float))


if __name__ == "__main__":
    main()
