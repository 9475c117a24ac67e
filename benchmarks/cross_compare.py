"""Paired tests between labels of *different* comparison folders, each at the rate its own folder chose.

``llm4msr-compare --merge`` joins folders run with one learning-rate grid; a label run later with a single given rate
(e.g. a cheaper variant at the rate its full form chose) has no lr-search rows there, so the merged report cannot
place it. This reads each label's reported-seed runs through :class:`recbole_llm4msr.compare.Comparison` (the same
config-hash check, so a stale row never counts), pairs them by seed, and writes a markdown table of paired t-tests
with Benjamini-Hochberg over the table's tests (``--out X.md``), the tests as ``X.csv`` and the entries' per-seed
AUCs as ``X.png``::

    python benchmarks/cross_compare.py --dataset=ml-100k-msr --epochs=30 --seeds=3 \
        --entry "plain=benchmarks/results/compare-ml-100k-msr-items|0.001,0.003,0.01|MMoE" \
        --entry "narrow8=benchmarks/results/compare-ml-100k-msr-narrow8|0.003|MMoE_LLM4MSR[...]" \
        --pair narrow8,plain --out benchmarks/results/compare-ml-100k-msr-narrow8/cross.md

Nothing is run; a label without its reported seeds is an error naming the folder.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from recbole_llm4msr.atomic import atomic_path, atomic_write_csv, atomic_write_text  # noqa: E402
from recbole_llm4msr.compare import Comparison, corrected, mean_std, paired_test, parse_setting  # noqa: E402


def parse_entry(text):
    """``NAME=FOLDER|RATE[,RATE...]|LABEL[|KEY=VALUE;KEY=VALUE...]``: the last part holds the ``--set`` settings the
    folder was run with (e.g. ``train_batch_size=8192;knowledge_store=PATH``), which its rows' config hashes cover."""
    try:
        name, rest = text.split("=", 1)
        folder, grid, label, *more = rest.split("|", 3)
        items = [item for item in (more[0].split(";") if more else []) if item.strip()]
        if any("=" not in item for item in items):
            raise ValueError(items)
        extra = dict(parse_setting(item) for item in items)
    except ValueError:
        raise SystemExit(f"--entry '{text}': expected NAME=FOLDER|RATE[,RATE...]|LABEL[|KEY=VALUE;...]")
    return name, folder, [float(x) for x in grid.split(",")], label, extra


def entry_runs(dataset, folder, grid, label, seeds, epochs, extra=None, data_path="dataset/"):
    if not os.path.isfile(os.path.join(folder, "runs.csv")):
        raise SystemExit(f"{folder}: no runs.csv (not a comparison folder)")
    comparison = Comparison(dataset, [label], seeds, grid, folder, epochs=epochs, extra=extra or {},
                            data_path=data_path)
    lr, runs = comparison.best_lr(label), comparison.final_runs(label)
    if len(runs) != seeds:
        raise SystemExit(f"{folder}: '{label}' has {len(runs)} of its {seeds} reported seeds at the chosen rate "
                         f"{lr} (grid {grid}); run them with llm4msr-compare first (and give the entry the --set "
                         f"settings the folder was run with)")
    return {int(r["seed"]): float(r["test_auc"]) for r in runs}, lr


def load_entries(texts, dataset, seeds, epochs, data_path="dataset/"):
    """{NAME: (label, folder, chosen rate, {seed: test AUC})} for ``--entry`` texts (:func:`parse_entry`)."""
    entries = {}
    for text in texts:
        name, folder, grid, label, extra = parse_entry(text)
        values, lr = entry_runs(dataset, folder, grid, label, seeds, epochs, extra, data_path)
        entries[name] = (label, folder, lr, values)
    return entries


def split_pair(pair, names):
    """``--pair A,B`` -> (A, B), both among ``names``."""
    a, _, b = pair.partition(",")
    if a not in names or b not in names:
        raise SystemExit(f"--pair {pair}: names must be among the entries {sorted(names)}")
    return a, b


def plot_entries(entries, dataset, path):
    """Each entry's test AUC per seed (dots) and its mean ± std (a bar), one row per entry in the table's order."""
    import statistics

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(entries)
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(names) + 1.6))
    for i, name in enumerate(names):
        values = [entries[name][3][s] for s in sorted(entries[name][3])]
        ax.scatter(values, [i] * len(values), s=12, color="tab:gray", alpha=0.6, zorder=2)
        err = statistics.stdev(values) if len(values) > 1 else 0.0
        ax.errorbar(statistics.mean(values), i, xerr=err, fmt="o", color="tab:red", capsize=3, zorder=3)
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set_xlabel("test AUC")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(f"{dataset}: test AUC per seed (dots), mean ± std\n(each label at the rate its folder chose)",
                 fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--entry", action="append", required=True,
                   help="NAME=FOLDER|RATE[,RATE...]|LABEL[|KEY=VALUE;...] (the folder's --set settings)")
    p.add_argument("--data_path", default="dataset/")
    p.add_argument("--pair", action="append", required=True, help="NAME_A,NAME_B: test A against B")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    entries = load_entries(args.entry, args.dataset, args.seeds, args.epochs, args.data_path)
    lines = [f"Test AUC on {args.dataset} over the reported seeds, each label at the rate its own folder chose; "
             f"paired t-tests by seed, Benjamini-Hochberg over the {len(args.pair)} tests of this table.", "",
             "| name | label | folder | lr | test AUC | per seed |", "|---|---|---|---|---|---|"]
    for name, (label, folder, lr, values) in entries.items():
        v = [values[s] for s in sorted(values)]
        lines.append(f"| {name} | `{label}` | `{os.path.relpath(folder)}` | {lr} | "
                     f"{mean_std(v)} | {', '.join(f'{x:.4f}' for x in v)} |")
    tests = []
    for pair in args.pair:
        a, b = split_pair(pair, entries)
        seeds = sorted(set(entries[a][3]) & set(entries[b][3]))
        rel, _, pvalue = paired_test([entries[a][3][s] for s in seeds], [entries[b][3][s] for s in seeds])
        tests.append((a, b, rel, pvalue))
    adjusted = corrected([t[3] if t[3] is not None else 1.0 for t in tests])
    lines += ["", "| test | relative change | p | corrected p |", "|---|---|---|---|"]
    for (a, b, rel, pvalue), q in zip(tests, adjusted):
        lines.append(f"| {a} vs {b} | {rel:+.2f}% | {'–' if pvalue is None else f'{pvalue:.3f}'} | {q:.3f} |")
    text = "\n".join(lines) + "\n"
    atomic_write_text(args.out, text)
    stem = os.path.splitext(args.out)[0]
    rows = []
    for (a, b, rel, pvalue), q in zip(tests, adjusted):
        seeds = sorted(set(entries[a][3]) & set(entries[b][3]))
        rows.append({"test": f"{a} vs {b}", "name": a, "baseline": b, "label": entries[a][0],
                     "baseline_label": entries[b][0], "seeds": len(seeds),
                     "mean": round(sum(entries[a][3][s] for s in seeds) / len(seeds), 6),
                     "baseline_mean": round(sum(entries[b][3][s] for s in seeds) / len(seeds), 6),
                     "relative_change_pct": round(rel, 4), "p_raw": "" if pvalue is None else round(pvalue, 6),
                     "p_corrected": round(q, 6), "correction": "Benjamini-Hochberg",
                     "test_kind": "paired t-test by seed, two-sided"})
    atomic_write_csv(stem + ".csv", rows)
    plot_entries(entries, args.dataset, stem + ".png")
    print(text)


if __name__ == "__main__":
    main()
