"""Train every backbone and stock RecBole DeepFM with the same split and seeds; tabulate per-scenario quality/speed.

Writes ``backbones-<dataset>.csv`` (one row per model x seed), ``backbones-<dataset>.md`` (mean over seeds, ± std
when several) and ``backbones-<dataset>.png`` (per-scenario test AUC) into ``--out``.
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from recbole_llm4msr.atomic import atomic_write_csv, atomic_write_text  # noqa: E402
from recbole_llm4msr.model.backbones import BACKBONES  # noqa: E402
from recbole_llm4msr.quick_start import run_recbole  # noqa: E402

DEFAULT_MODELS = ["DeepFM"] + [b.__name__ for b in BACKBONES]


def run_one(model, dataset, seed, args, workdir):
    config = {
        "seed": seed, "epochs": args.epochs, "stopping_step": args.stopping_step, "show_progress": False,
        "state": "WARNING", "data_path": args.data_path, "embedding_size": args.embedding_size,
        "learning_rate": args.learning_rate, "train_batch_size": args.batch_size,
        "results_file": os.path.join(workdir, f"{model}-{dataset}-{seed}.json"),
    }
    start = time.perf_counter()
    result = run_recbole(model=model, dataset=dataset, config_dict=config, saved=True)
    wall = time.perf_counter() - start
    test = result["results"]["test"]
    row = {"dataset": dataset, "model": model, "seed": seed, "epochs": result["epochs_trained"],
           "sec_per_epoch": round(result["train_seconds_per_epoch"], 3), "wall_sec": round(wall, 1),
           "auc": test["auc"], "logloss": test["logloss"]}
    for name, m in test["scenarios"].items():
        row[f"auc_{name}"] = m["auc"]
        row[f"logloss_{name}"] = m["logloss"]
    return row


def summarize(rows):
    models = list(dict.fromkeys(r["model"] for r in rows))
    metric_cols = [c for c in rows[0] if c.startswith("auc") or c.startswith("logloss")] + ["sec_per_epoch"]
    lines = ["| model | " + " | ".join(metric_cols) + " |", "|---" * (len(metric_cols) + 1) + "|"]
    for model in models:
        cells = []
        for col in metric_cols:
            vals = [r[col] for r in rows if r["model"] == model and r[col] is not None]
            if not vals:
                cells.append("n/a")
                continue
            mean = statistics.mean(vals)
            fmt = "{:.2f}" if col == "sec_per_epoch" else "{:.4f}"
            cell = fmt.format(mean)
            if len(vals) > 1:
                cell += " ± " + fmt.format(statistics.stdev(vals))
            cells.append(cell)
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(r["model"] for r in rows))
    scen_cols = [c for c in rows[0] if c.startswith("auc_")]
    fig, ax = plt.subplots(figsize=(max(6, len(models) * 1.2), 4))
    width = 0.8 / len(scen_cols)
    for j, col in enumerate(scen_cols):
        means = [statistics.mean([r[col] for r in rows if r["model"] == m]) for m in models]
        ax.bar([i + j * width for i in range(len(models))], means, width, label=col[4:])
    ax.set_xticks([i + width * (len(scen_cols) - 1) / 2 for i in range(len(models))], models, rotation=20)
    lo = min(r[c] for r in rows for c in scen_cols)
    ax.set_ylim(max(0.0, lo - 0.03), None)
    ax.set_ylabel("test AUC")
    ax.set_title(f"per-scenario test AUC, {rows[0]['dataset']}")
    ax.legend(title="scenario")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--datasets", nargs="+", default=["ml-100k-msr"])
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[2020])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--stopping_step", type=int, default=3)
    parser.add_argument("--embedding_size", type=int, default=16)
    parser.add_argument("--learning_rate", type=float, default=0.001)
    parser.add_argument("--batch_size", type=int, default=2048)
    parser.add_argument("--data_path", default=os.path.join(ROOT, "dataset"))
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results"))
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    with tempfile.TemporaryDirectory() as workdir:
        os.chdir(workdir)  # RecBole writes log/ and saved/ into the working directory
        for dataset in args.datasets:
            rows = []
            for model in args.models:
                for seed in args.seeds:
                    print(f"[{dataset}] {model} seed {seed} ...", flush=True)
                    rows.append(run_one(model, dataset, seed, args, workdir))
                    print(f"    test AUC {rows[-1]['auc']}, {rows[-1]['sec_per_epoch']} s/epoch", flush=True)
            base = os.path.join(args.out, f"backbones-{dataset}")
            atomic_write_csv(base + ".csv", rows)
            table = summarize(rows)
            header = (f"Test metrics on {dataset} (fixed 8:1:1 split; seeds {args.seeds}; up to {args.epochs} epochs, "
                      f"early stopping on validation AUC, patience {args.stopping_step}; embedding "
                      f"{args.embedding_size}, lr {args.learning_rate}, batch {args.batch_size}; "
                      f"sec_per_epoch = training only)\n\n")
            atomic_write_text(base + ".md", header + table + "\n")
            print(header + table)
            png = plot(rows, base + ".png")
            print(f"written: {base}.csv, {base}.md" + (f", {png}" if png else ""))


if __name__ == "__main__":
    main()
