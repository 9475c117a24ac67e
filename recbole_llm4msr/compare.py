"""``llm4msr-compare``: models x seeds on one dataset and one split, with a learning-rate search, significance
tests against the plain backbone, a table in the paper's layout and a plot.

    llm4msr-compare --dataset=ml-100k-msr --models=DeepFM,MMoE,MMoE_DN,MMoE_EP,MMoE_LLM4MSR --seeds=3 \\
                    [--lr_grid=0.001,0.005] [--epochs=30] [--out=compare/ml-100k-msr] [--set key=value ...]

For every model the learning rate is chosen on the validation split (overall AUC, first seed), then the model runs
with ``--seeds`` seeds at that rate. Every finished run is appended to ``runs.csv`` at once, so an interrupted
comparison resumes without recomputing anything; a run that crashes is recorded (``status=error``) and the rest go
on. Outputs in ``--out``: ``runs.csv`` (every run), ``table.md`` (mean ± std per scenario; ``*`` where
a ``<Backbone>_<LLM4MSR|DN|EP>`` variant beats its plain backbone by a paired t-test over seeds, p < 0.05; relative
improvement in %), ``auc.png``.
"""
import argparse
import csv
import os
import statistics
import sys
import tempfile
import traceback

from tqdm import tqdm

from recbole_llm4msr.atomic import atomic_write

FIELDS = ["model", "phase", "seed", "learning_rate", "status", "valid_auc", "valid_logloss", "test_auc",
          "test_logloss", "train_s_per_epoch", "test_ms_per_1000", "params", "epochs", "error"]


def family(model):
    """``(backbone, enhancement)`` of a model name, from the variant list (``MMoE_LLM4MSR`` -> ``("MMoE",
    "llm4msr")``); any other model is its own ``plain`` family."""
    from recbole_llm4msr.model.variants import VARIANTS

    cls = VARIANTS.get(model)
    return (cls.backbone_name, cls.fixed_enhancement) if cls is not None else (model, "plain")


def paired_test(treated, base):
    """(relative improvement of the means in %, p-value of a two-sided paired t-test; None with < 2 pairs)."""
    from scipy.stats import ttest_rel

    rel = (statistics.mean(treated) / statistics.mean(base) - 1) * 100
    if len(treated) < 2 or len(treated) != len(base):
        return rel, None
    diffs = [a - b for a, b in zip(treated, base)]
    if all(d == diffs[0] for d in diffs):  # zero variance: the test is undefined; identical runs are not a gain
        return rel, (0.0 if diffs[0] != 0 else 1.0)
    return rel, float(ttest_rel(treated, base).pvalue)


def significant(treated, base, alpha=0.05):
    rel, p = paired_test(treated, base)
    return p is not None and p < alpha and rel > 0


class Comparison:
    def __init__(self, dataset, models, seeds, lr_grid, out, epochs=30, data_path="dataset/", extra=None,
                 config_files=None, first_seed=2020):
        self.dataset, self.models, self.lr_grid = dataset, models, lr_grid
        self.seeds = [first_seed + k for k in range(seeds)]
        self.out, self.epochs, self.data_path = out, epochs, data_path
        self.extra, self.config_files = dict(extra or {}), config_files
        os.makedirs(out, exist_ok=True)
        self.csv = os.path.join(out, "runs.csv")
        self.rows = self._load()

    def _load(self):
        self.fields = list(FIELDS)
        if not os.path.isfile(self.csv):
            return []
        with open(self.csv, newline="") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
        self.fields += [c for c in reader.fieldnames or [] if c not in self.fields]
        return rows

    def _append(self, row):
        self.fields += [k for k in row if k not in self.fields]
        self.rows.append({k: "" if v is None else str(v) for k, v in row.items()})
        self._write()

    def _write(self):
        """runs.csv rewritten atomically (a kill never leaves a torn row), with every column seen so far."""
        def write(f):
            w = csv.DictWriter(f, fieldnames=self.fields, restval="")
            w.writeheader()
            w.writerows(self.rows)

        atomic_write(self.csv, write)

    def done(self, model, seed, lr):
        return next((r for r in self.rows if r["model"] == model and r["seed"] == str(seed)
                     and float(r["learning_rate"]) == float(lr) and r["status"] == "ok"), None)

    def run_one(self, model, seed, lr, phase):
        from recbole_llm4msr.quick_start import run_recbole

        found = self.done(model, seed, lr)
        if found:
            return found
        work = tempfile.mkdtemp(prefix="llm4msr-compare-")
        config = {"seed": seed, "learning_rate": lr, "epochs": self.epochs, "data_path": self.data_path,
                  "state": "WARNING", "show_progress": False, "checkpoint_dir": os.path.join(work, "saved"),
                  "results_file": os.path.join(self.out, "runs", f"{model}-lr{lr}-seed{seed}.json"), **self.extra}
        row = {"model": model, "phase": phase, "seed": seed, "learning_rate": lr}
        cwd = os.getcwd()
        try:
            os.chdir(work)
            result = run_recbole(model=model, dataset=self.dataset, config_dict=config,
                                 config_file_list=self.config_files)
            payload = result["results"]
            row.update(status="ok", valid_auc=payload["best_valid"]["auc"], valid_logloss=payload["best_valid"]["logloss"],
                       test_auc=payload["test"]["auc"], test_logloss=payload["test"]["logloss"],
                       train_s_per_epoch=round(result.get("train_seconds_per_epoch", 0), 3),
                       test_ms_per_1000=round(result.get("test_ms_per_1000", 0), 3), params=result["num_parameters"],
                       epochs=result.get("epochs_trained"))
            for part in ("best_valid", "test"):
                for scen, m in payload[part]["scenarios"].items():
                    for metric in ("auc", "logloss"):
                        row[f"{'valid' if part == 'best_valid' else 'test'}_{metric}_{scen}"] = m[metric]
        except Exception as e:  # a crash in one run is recorded; the comparison goes on
            row.update(status="error", error=f"{type(e).__name__}: {e}"[:300])
            traceback.print_exc()
        finally:
            os.chdir(cwd)
        self._append(row)
        return {k: str(v) for k, v in row.items()}

    def best_lr(self, model):
        scores = {}
        for lr in self.lr_grid:
            r = self.done(model, self.seeds[0], lr)
            if r:
                scores[lr] = float(r["valid_auc"])
        return max(scores, key=scores.get) if scores else None

    def run(self):
        total = len(self.models) * (len(self.lr_grid) + len(self.seeds) - 1)
        bar = tqdm(total=total, desc=f"compare {self.dataset}", unit="run")
        for model in self.models:
            for lr in self.lr_grid:
                r = self.run_one(model, self.seeds[0], lr, "lr-search")
                bar.update(1)
                tqdm.write(f"{model} lr={lr} seed={self.seeds[0]}: {r['status']} valid AUC {r.get('valid_auc')} "
                           f"test AUC {r.get('test_auc')}")
            lr = self.best_lr(model)
            for seed in self.seeds[1:]:
                if lr is None:
                    bar.update(1)
                    continue
                r = self.run_one(model, seed, lr, "seeds")
                bar.update(1)
                tqdm.write(f"{model} lr={lr} seed={seed}: {r['status']} test AUC {r.get('test_auc')}")
        bar.close()
        return self.report()

    # ------------------------------------------------------------------ reporting
    def final_runs(self, model):
        """The runs at the chosen learning rate, one per seed (in seed order)."""
        lr = self.best_lr(model)
        if lr is None:
            return []
        return [r for r in (self.done(model, s, lr) for s in self.seeds) if r]

    def scenarios(self):
        keys = {k for r in self.rows for k in r if k.startswith("test_auc_") and r.get(k) not in (None, "")}
        return sorted(k[len("test_auc_"):] for k in keys)

    def report(self):
        scen = self.scenarios()
        columns = [f"test_auc_{s}" for s in scen] + ["test_auc"]
        stock = [m for m in self.models if family(m)[1] == "plain" and not any(
            x.startswith(m + "_") for x in self.models) and not _is_backbone(m)]
        order = stock + [m for m in self.models if m not in stock]
        lines = [f"Test AUC on {self.dataset}: mean ± std over seeds {self.seeds} at the learning rate chosen on "
                 f"validation (grid {self.lr_grid}); `*` = better than the plain backbone by a paired t-test over "
                 f"seeds (p < 0.05); (+x%) = relative change of the mean.", "",
                 "| model | lr | " + " | ".join(scen + ["overall"]) + " | s/epoch | params |",
                 "|---" * (len(scen) + 5) + "|"]
        summary = {}
        for model in order:
            runs = self.final_runs(model)
            if not runs:
                failed = [r for r in self.rows if r["model"] == model and r["status"] == "error"]
                lines.append(f"| {model} | failed: {failed[-1]['error'] if failed else 'no run'} |")
                continue
            base_model, variant = family(model)
            base_runs = self.final_runs(base_model) if variant != "plain" else []
            cells = []
            for col in columns:
                vals = [float(r[col]) for r in runs if r.get(col) not in (None, "")]
                summary[(model, col)] = vals
                if not vals:
                    cells.append("n/a")
                    continue
                cell = f"{statistics.mean(vals):.4f}" + (f" ± {statistics.stdev(vals):.4f}" if len(vals) > 1 else "")
                base_vals = [float(r[col]) for r in base_runs if r.get(col) not in (None, "")]
                if base_vals and len(base_vals) == len(vals):
                    rel, _ = paired_test(vals, base_vals)
                    cell += (" *" if significant(vals, base_vals) else "") + f" ({rel:+.2f}%)"
                cells.append(cell)
            speed = statistics.mean(float(r["train_s_per_epoch"]) for r in runs)
            lines.append(f"| {model} | {runs[0]['learning_rate']} | " + " | ".join(cells) + f" | {speed:.2f} | "
                         f"{runs[0]['params']} |")
        table = "\n".join(lines) + "\n"
        with open(os.path.join(self.out, "table.md"), "w") as f:
            f.write(table)
        self.plot(order, scen)
        return table

    def plot(self, order, scen):
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            print("matplotlib is not installed: no plot (pip install -e '.[bench]')")
            return None
        cols = [f"test_auc_{s}" for s in scen] + ["test_auc"]
        models = [m for m in order if self.final_runs(m)]
        if not models:
            return None
        fig, axes = plt.subplots(1, len(cols), figsize=(4 * len(cols), 0.35 * len(models) + 2), sharey=True)
        axes = axes if hasattr(axes, "__len__") else [axes]
        colors = {"plain": "tab:gray", "dn": "tab:blue", "ep": "tab:orange", "llm4msr": "tab:red"}
        for ax, col in zip(axes, cols):
            for i, m in enumerate(models):
                vals = [float(r[col]) for r in self.final_runs(m) if r.get(col) not in (None, "")]
                if not vals:
                    continue
                err = statistics.stdev(vals) if len(vals) > 1 else 0.0
                ax.errorbar(statistics.mean(vals), i, xerr=err, fmt="o", color=colors[family(m)[1]], capsize=3)
            ax.set_title(col.replace("test_auc_", "").replace("test_auc", "overall"))
            ax.set_xlabel("test AUC")
            ax.grid(axis="x", alpha=0.3)
        axes[0].set_yticks(range(len(models)), models)
        axes[0].invert_yaxis()
        fig.suptitle(f"{self.dataset}: per-scenario test AUC (mean ± std over {len(self.seeds)} seeds)")
        fig.tight_layout()
        path = os.path.join(self.out, "auc.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return path


def _is_backbone(model):
    from recbole_llm4msr.model.backbones import BACKBONES

    return model in {b.__name__ for b in BACKBONES}


def _value(text):
    import yaml

    return yaml.safe_load(text)


def main(argv=None):
    p = argparse.ArgumentParser(prog="llm4msr-compare", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True)
    p.add_argument("--models", required=True, help="comma-separated model names")
    p.add_argument("--seeds", type=int, default=3, help="number of seeds (2020, 2021, ...)")
    p.add_argument("--lr_grid", default="0.001,0.005", help="comma-separated learning rates")
    p.add_argument("--epochs", type=int, default=30, help="at most; early stopping on validation AUC")
    p.add_argument("--out", default=None, help="default compare/<dataset>")
    p.add_argument("--data_path", default="dataset/")
    p.add_argument("--config_files", default="", help="comma-separated YAML files for every run")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any RecBole / model setting")
    args = p.parse_args(argv)
    extra = {}
    for item in args.set:
        key, _, value = item.partition("=")
        extra[key] = _value(value)
    comparison = Comparison(
        args.dataset, [m.strip() for m in args.models.split(",") if m.strip()], args.seeds,
        [float(x) for x in args.lr_grid.split(",")], args.out or os.path.join("compare", args.dataset),
        epochs=args.epochs, data_path=args.data_path, extra=extra,
        config_files=[f for f in args.config_files.split(",") if f] or None,
    )
    sys.argv = sys.argv[:1]  # RecBole's Config would read our own flags as its parameters
    print(comparison.run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
