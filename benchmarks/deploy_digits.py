"""The deployment figures for the digits models, end to end, one run:

    .venv/bin/python benchmarks/deploy_digits.py [--models digits_lif,digits_srm,...]
        [--qat-epochs 3] [--out build/deploy_digits] [--json results.json]

For each example config: train (full length; ``best.pt`` chosen on the validation split,
10 % of the training data) -> export ``best.pt`` for loihi -> torch-int and event on the whole
test split (360 samples, spike for spike) and Lava on 50 samples; QAT fine-tuning of the same
``best.pt``. Float, PTQ and QAT accuracy all come from that one checkpoint (QAT: fine-tuned
from it) on the same test samples, each measured once after training. Prints one table with
n, what one sample is worth and, per difference to float, whether it is distinguishable
(2 samples or more) or not.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

from snn2hw.common.examples import examples_dir
from snn2hw.pipeline.compare import compare
from snn2hw.pipeline.export import export
from snn2hw.pipeline.finetune import finetune
from snn2hw.pipeline.finetune import integer_accuracy as export_integer_accuracy
from snn2hw.training.config import load_config
from snn2hw.training.evaluation import binomial_se, distinguishable, sample_worth
from snn2hw.training.train import train

EXAMPLES = examples_dir()


def measure(cfg: dict[str, Any], out: Path, *, qat_epochs: int = 3, lava_samples: int = 50,
            integer_accuracy=export_integer_accuracy) -> dict[str, Any]:
    """One model: train -> export best.pt -> backends -> QAT; float/PTQ/QAT of best.pt on the
    same test samples. Raises if the figures do not share checkpoint and samples."""
    cfg["experiment"]["device"] = "cpu"
    t0 = time.monotonic()
    res = train(cfg, out_dir=out / "train", progress=False)
    train_s = time.monotonic() - t0
    best = res.best_checkpoint
    exp = export(best, "loihi", out / "export")
    full = compare(exp.qgraph_path, ["torch-int", "event"], 10_000)
    lava = compare(exp.qgraph_path, ["event", "lava"], lava_samples) if lava_samples else None
    qat = finetune(best, "loihi", out / "qat.pt", epochs=qat_epochs, progress=False,
                   integer_accuracy=integer_accuracy)
    n = qat.test_samples
    # One checkpoint, one set of test samples: every figure below must agree on both.
    checks = {
        "QAT fine-tunes best.pt": Path(qat.source) == Path(best),
        "train's test n = QAT's test n = backends' n": res.test.num_samples == n == full.samples,
        "float (train, once) = float (QAT run)": res.test.accuracy == qat.float_accuracy,
        "PTQ (QAT run) = torch-int (compare)": qat.ptq_accuracy == full.accuracy["torch-int"],
    }
    failed = [k for k, ok in checks.items() if not ok]
    if failed:
        raise RuntimeError(f"{cfg['experiment']['name']}: inconsistent figures: {failed}")
    return {
        "model": cfg["experiment"]["name"],
        "checkpoint": str(best),
        "best_epoch": res.best_epoch,
        "epochs": len(res.history),
        "val_acc": res.val.accuracy if res.val else math.nan,
        "val_samples": res.val.num_samples if res.val else 0,
        "test_samples": n,
        "sample_worth": sample_worth(n),
        "float_acc": qat.float_accuracy,
        "float_se": binomial_se(qat.float_accuracy, n),
        "ptq_acc": qat.ptq_accuracy,
        "qat_acc": qat.qat_accuracy,
        "ptq_minus_float_samples": round((qat.ptq_accuracy - qat.float_accuracy) * n),
        "qat_minus_float_samples": round((qat.qat_accuracy - qat.float_accuracy) * n),
        "ptq_vs_float_distinguishable": distinguishable(qat.ptq_accuracy, qat.float_accuracy, n),
        "qat_vs_float_distinguishable": distinguishable(qat.qat_accuracy, qat.float_accuracy, n),
        "torch_int_eq_event": full.integer_equal,
        "lava_samples": lava.samples if lava else 0,
        "lava_eq_event": lava.integer_equal if lava else None,
        "lava_acc": lava.accuracy["lava"] if lava else None,
        "cores": exp.report["resources"]["total_cores"],
        "train_s": train_s,  # wall time on a shared machine: noisy, not in the table
        "checks": list(checks),
    }


def _diff(samples: int, ok: bool) -> str:
    return f"{samples:+d}" + ("" if ok else " (n.d.)")


def table(rows: list[dict[str, Any]]) -> str:
    """Markdown table plus the line saying what n and one sample are."""
    lines = [
        "| model | best epoch (val acc, n) | float | PTQ (int) | QAT (int) | PTQ - float "
        "| QAT - float | torch-int = event | Lava = event | cores |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lava = f"{r['lava_eq_event']} ({r['lava_samples']})" if r["lava_samples"] else "-"
        ptq = _diff(r["ptq_minus_float_samples"], r["ptq_vs_float_distinguishable"])
        qat = _diff(r["qat_minus_float_samples"], r["qat_vs_float_distinguishable"])
        lines.append(
            f"| {r['model']} | {r['best_epoch']}/{r['epochs']} ({r['val_acc']:.4f}, "
            f"{r['val_samples']}) | {r['float_acc']:.4f} | {r['ptq_acc']:.4f} | "
            f"{r['qat_acc']:.4f} | {ptq} | {qat} | "
            f"{r['torch_int_eq_event']} ({r['test_samples']}) | {lava} | {r['cores']} |"
        )
    ns = sorted({r["test_samples"] for r in rows})
    for n in ns:
        se = max(r["float_se"] for r in rows if r["test_samples"] == n)
        lines.append(
            f"\nn = {n} test samples: one sample = {100 * sample_worth(n):.2f} pp; binomial "
            f"standard error of the float accuracies <= {100 * se:.2f} pp. Differences are in "
            "samples; n.d. = fewer than 2 samples, not distinguishable."
        )
    return "\n".join(lines)


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
        cfg = load_config(EXAMPLES / f"{name}.toml")
        row = measure(cfg, Path(args.out) / name, qat_epochs=args.qat_epochs,
                      lava_samples=args.lava_samples)
        rows.append(row)
        print(json.dumps(row, default=float), flush=True)
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2, default=float))


if __name__ == "__main__":
    main()
