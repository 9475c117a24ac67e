"""Several ``llm4msr-align`` runs (other seeds: other samples, other validation cases) read together: each run's
paired differences and their pooled estimate, as a table (JSON) and a forest plot (PNG).

    python benchmarks/align_seeds.py --runs seed0=A/eval.json seed1=B/eval.json ... --out DIR \
        [--versus popularity popularity_words base] [--resamples 2000]

For each run and each reference ranker in ``--versus``: aligned − reference per metric (HR@1, HR@5, NDCG@5) with
the paired bootstrap of :func:`recbole_llm4msr.align.evaluate.paired_difference`. Pooled: the mean of the per-case
differences over every run's cases (each case counts once), with a bootstrap that resamples cases within each run
(stratified by run), its 95% interval and two-sided p-value. Per-run p-values are also given Benjamini-Hochberg
adjusted over all the runs x references of a metric (``p_bh``). A case is one validation user's held-out item
among 20 candidates; runs with other seeds draw their cases independently, so a user may appear in two runs (ranked
by two different models). Writes ``DIR/seeds.json`` and ``DIR/seeds.png``.
"""
import argparse
import json
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from recbole_llm4msr.align.evaluate import METRICS, _per_case, paired_difference  # noqa: E402
from recbole_llm4msr.atomic import atomic_path, atomic_write_json  # noqa: E402
from recbole_llm4msr.compare import corrected  # noqa: E402


def pooled_difference(runs, other, resamples=2000, seed=0):
    """aligned − ``other`` over the cases of every run in ``runs`` ({label: evaluation}), each case once; bootstrap
    within each run. -> {"cases", "runs", "resamples", metric: {"difference", "low", "high", "p"}}."""
    if not runs:
        raise ValueError("no run to pool")
    rng = np.random.default_rng(seed)
    per_run = []
    for label, ev in runs.items():
        if other not in ev or "aligned" not in ev:
            raise ValueError(f"run '{label}' has no '{other}' or 'aligned' ranking (it has {sorted(ev)})")
        a, b = _per_case(ev["aligned"]["ranks"]), _per_case(ev[other]["ranks"])
        if len(ev["aligned"]["ranks"]) != len(ev[other]["ranks"]):
            raise ValueError(f"run '{label}': aligned and {other} ranked different numbers of cases")
        per_run.append({m: a[m] - b[m] for m in METRICS})
    total = sum(len(d[METRICS[0]]) for d in per_run)
    picks = [rng.integers(0, len(d[METRICS[0]]), size=(resamples, len(d[METRICS[0]]))) for d in per_run]
    out = {"cases": int(total), "runs": len(per_run), "resamples": int(resamples)}
    for m in METRICS:
        diff = np.concatenate([d[m] for d in per_run])
        boot = sum(d[m][pick].sum(axis=1) for d, pick in zip(per_run, picks)) / total
        p = min(1.0, 2 * min(float((boot <= 0).mean()), float((boot >= 0).mean())))
        out[m] = {"difference": round(float(diff.mean()), 4), "low": round(float(np.quantile(boot, 0.025)), 4),
                  "high": round(float(np.quantile(boot, 0.975)), 4), "p": round(p, 4)}
    return out


def summarise(runs, versus, resamples=2000, seed=0):
    out = {"runs": {label: {"cases": len(ev["aligned"]["ranks"]),
                            "HR@1": {k: ev[k].get("HR@1") for k in ["aligned", *versus] if k in ev}}
                    for label, ev in runs.items()},
           "versus": list(versus), "per_run": {}, "pooled": {}}
    for other in versus:  # every run must hold every reference (pooled_difference says which does not)
        out["pooled"][other] = pooled_difference(runs, other, resamples, seed)
        out["per_run"][other] = {label: paired_difference(ev["aligned"], ev[other], resamples, seed)
                                 for label, ev in runs.items()}
    for m in METRICS:  # BH over every run x reference of the metric
        cells = [(other, label) for other in versus for label in out["per_run"][other]]
        for (other, label), p_bh in zip(cells, corrected([out["per_run"][other][label][m]["p"] for other, label
                                                          in cells])):
            out["per_run"][other][label][m]["p_bh"] = round(p_bh, 4)
    out["correction"] = "Benjamini-Hochberg over the runs x references of each metric (per_run ... p_bh)"
    return out


def forest_plot(summary, path, metric="HR@1"):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    versus = summary["versus"]
    fig, axes = plt.subplots(1, len(versus), figsize=(4.2 * len(versus), 0.5 * (len(summary["runs"]) + 2) + 1.2),
                             squeeze=False, sharey=True)
    for ax, other in zip(axes[0], versus):
        rows = [(f"{label} ({d['cases']} cases)", d[metric]) for label, d in summary["per_run"][other].items()]
        rows.append((f"pooled ({summary['pooled'][other]['cases']} cases)", summary["pooled"][other][metric]))
        forest(ax, [(name, d["difference"], d["low"], d["high"]) for name, d in rows], f"aligned − {other}",
               f"{metric} difference (95% CI)")
    save_figure(fig, path)


def forest(ax, rows, title, xlabel):
    """One forest panel: ``rows`` = [(name, difference, low, high)] top to bottom; a name starting with "pooled" is
    drawn as the summary (black diamond); a dashed line at 0."""
    from matplotlib.ticker import MaxNLocator

    for y, (name, diff, low, high) in enumerate(reversed(rows)):
        pooled = name.startswith("pooled")
        ax.errorbar(diff, y, xerr=[[diff - low], [high - diff]], fmt="D" if pooled else "o",
                    color="black" if pooled else "tab:blue", capsize=3)
    ax.axvline(0, color="grey", lw=0.8, ls="--")
    ax.xaxis.set_major_locator(MaxNLocator(4))  # four-decimal differences: fewer ticks, no overlapping labels
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([name for name, *_ in reversed(rows)])
    ax.set_title(title)
    ax.set_xlabel(xlabel)


def save_figure(fig, path):
    import matplotlib.pyplot as plt

    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", nargs="+", required=True, metavar="LABEL=EVAL_JSON")
    p.add_argument("--versus", nargs="+", default=["popularity", "popularity_words", "base"])
    p.add_argument("--resamples", type=int, default=2000)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    runs, files = {}, {}
    for spec in args.runs:
        label, sep, path = spec.partition("=")
        if not sep or not os.path.isfile(path):
            raise SystemExit(f"--runs takes LABEL=EVAL_JSON with an existing file, not '{spec}'")
        runs[label], files[label] = json.load(open(path)), path
    summary = dict(summarise(runs, args.versus, args.resamples), files=files)
    os.makedirs(args.out, exist_ok=True)
    atomic_write_json(os.path.join(args.out, "seeds.json"), summary, indent=2)
    forest_plot(summary, os.path.join(args.out, "seeds.png"))
    for other in args.versus:
        d = summary["pooled"][other]["HR@1"]
        print(f"aligned - {other}: pooled HR@1 {d['difference']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}] p {d['p']}")
    return summary


if __name__ == "__main__":
    main()
