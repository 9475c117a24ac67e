"""How many seeds would a verdict need? The power of issue 15's verdict test, from measured seed-to-seed spread.

The verdict counts a backbone when LLM4MSR beats its plain backbone *and* its shuffled-knowledge control by a paired
t-test over seeds, Benjamini-Hochberg-corrected over every test of the comparison table (54 on amazon-art-office),
with 3 seeds. This reads pairs of labels from comparison folders (as ``cross_compare.py`` does: each at the rate its
folder chose, the same config-hash check), takes the paired differences over the seeds both have, and for each pair
writes:

* the mean difference and its standard deviation over seeds;
* the per-test level ``alpha`` a test must reach inside the verdict's correction: with ``--tests M`` in the table and
  ``--passing m`` tests that would have to pass (4 backbones x 2 references = 8), Benjamini-Hochberg accepts the m-th
  smallest p-value at ``0.05 * m / M`` — the most lenient level a pass of exactly m tests can have;
* the smallest mean difference that could pass at that level with ``--at`` seeds and the measured spread
  (``t_{1-alpha/2, n-1} * sd / sqrt(n)``);
* the seeds needed to detect the measured mean at that level with 80% power (two-sided paired t-test, power from
  scipy's noncentral t distribution), and the same at an uncorrected 0.05.

    python benchmarks/verdict_power.py --dataset=amazon-art-office --epochs=4 --seeds=8 --tests=54 --passing=8 \\
        --entry "profile=FOLDER|0.01|SharedBottom_LLM4MSR|train_batch_size=8192;knowledge_store=PATH" \\
        --entry "plain=FOLDER|0.01|SharedBottom|train_batch_size=8192" --pair profile,plain \\
        --out benchmarks/results/verdict-power.csv

The spread is estimated from the seeds given (``--seeds``; more seeds, a better estimate). Rows of other datasets in
the CSV are kept; a Markdown table is written beside it. Nothing is run.

Pooled over backbones (``<out>-pooled.csv``, a second table in the Markdown): the verdict counts backbones one by one;
whether a knowledge helps LLM4MSR *at all* is a question over the backbones together. Pairs whose names differ only
in their first word (the backbone: ``STAR profile vs STAR`` and ``MMoE profile vs MMoE`` are the family ``X profile vs
X``) are pooled: each backbone's mean difference over the verdict's first ``--at`` seeds, and over all seeds, tested
across backbones by a one-sample t-test (backbones as the sample) and the exact Wilcoxon signed-rank test.
"""
import argparse
import math
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks.cross_compare import load_entries, split_pair  # noqa: E402
from benchmarks.knowledge_quality import merged_into, read_rows  # noqa: E402
from recbole_llm4msr.atomic import atomic_write_text  # noqa: E402
from recbole_llm4msr.compare import corrected  # noqa: E402

FIELDS = ["dataset", "pair", "seeds", "mean_difference", "sd_difference", "relative_change", "alpha", "at_seeds",
          "smallest_passing_mean", "seeds_for_80_power", "seeds_for_80_power_uncorrected"]
MAX_SEEDS = 200


def test_level(tests, passing, q=0.05):
    """Benjamini-Hochberg's level for the ``passing``-th smallest of ``tests`` p-values at FDR ``q``."""
    if not 1 <= passing <= tests:
        raise ValueError(f"--passing {passing}: between 1 and --tests {tests}")
    return q * passing / tests


def smallest_passing_mean(sd, seeds, alpha):
    """The smallest mean paired difference a two-sided t-test over ``seeds`` pairs with spread ``sd`` finds at
    ``alpha``."""
    from scipy.stats import t

    if seeds < 2:
        raise ValueError(f"a paired t-test needs 2 or more seeds, not {seeds}")
    return float(t.ppf(1 - alpha / 2, seeds - 1) * sd / math.sqrt(seeds))


def power(mean, sd, seeds, alpha):
    """Power of the two-sided paired t-test over ``seeds`` pairs for a true mean difference ``mean``, spread ``sd``."""
    from scipy.stats import nct, t

    df = seeds - 1
    crit = t.ppf(1 - alpha / 2, df)
    nc = mean / sd * math.sqrt(seeds)
    return float(nct.sf(crit, df, nc) + nct.cdf(-crit, df, nc))


def seeds_needed(mean, sd, alpha, target=0.8, most=MAX_SEEDS):
    """The fewest seeds (2..``most``) whose test has ``target`` power for ``mean`` > 0; None when none has (or the
    measured mean is not above 0: nothing to detect in that direction)."""
    if mean <= 0 or sd <= 0:
        return None if mean <= 0 else 2
    for n in range(2, most + 1):
        if power(mean, sd, n, alpha) >= target:
            return n
    return None


def paired_differences(a, b):
    """{seed: a - b} over the seeds both ``a`` and ``b`` ({seed: AUC}) have, in seed order."""
    return {s: a[s] - b[s] for s in sorted(set(a) & set(b))}


def pair_row(dataset, name, a, b, tests, passing, at):
    """One row of :data:`FIELDS` for per-seed values ``a`` and ``b`` ({seed: AUC})."""
    import numpy as np

    diffs = paired_differences(a, b)
    seeds = list(diffs)
    if len(seeds) < 2:
        raise ValueError(f"{name}: {len(seeds)} seed(s) in common; the spread needs 2 or more")
    d = np.array(list(diffs.values()))
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    alpha = test_level(tests, passing)
    base = float(np.mean([b[s] for s in seeds]))
    need = seeds_needed(mean, sd, alpha)
    loose = seeds_needed(mean, sd, 0.05)
    return {"dataset": dataset, "pair": name, "seeds": len(seeds), "mean_difference": round(mean, 4),
            "sd_difference": round(sd, 4), "relative_change": f"{mean / base * 100:+.2f}%", "alpha": round(alpha, 5),
            "at_seeds": at, "smallest_passing_mean": round(smallest_passing_mean(sd, at, alpha), 4),
            "seeds_for_80_power": need if need is not None else f"> {MAX_SEEDS}" if mean > 0 else "–",
            "seeds_for_80_power_uncorrected": loose if loose is not None else f"> {MAX_SEEDS}" if mean > 0 else "–"}


POOLED_FIELDS = ["dataset", "family", "backbones", "seeds", "positive", "mean_difference", "t_p", "wilcoxon_p"]


def family(name):
    """The pair's name with its first word (the backbone) written ``X`` wherever it occurs."""
    words = name.split()
    return " ".join("X" if w == words[0] else w for w in words)


def pooled_rows(dataset, differences, at):
    """Rows of :data:`POOLED_FIELDS`: ``differences`` {pair name: {seed: A - B}}; per family (:func:`family`, two or
    more backbones), each backbone's mean over its first ``at`` seeds and (when some have more) over all of them,
    tested across backbones."""
    import numpy as np
    from scipy.stats import ttest_1samp, wilcoxon

    families = {}
    for name, d in differences.items():
        families.setdefault(family(name), []).append(d)
    rows = []
    for fam, members in families.items():
        if len(members) < 2:
            continue
        views = [(str(at), lambda d: [d[s] for s in sorted(d)[:at]])]
        if any(len(d) > at for d in members):  # more seeds than the verdict's: the pooled test over all of them too
            views.append(("all", lambda d: list(d.values())))
        for label, take in views:
            means = np.array([np.mean(take(d)) for d in members])
            seeds = sorted({len(take(d)) for d in members})
            rows.append({"dataset": dataset, "family": fam, "backbones": len(means),
                         "seeds": f"{label} ({'/'.join(map(str, seeds))})", "positive": int((means > 0).sum()),
                         "mean_difference": round(float(means.mean()), 4),
                         "t_p": round(float(ttest_1samp(means, 0.0).pvalue), 4),
                         "wilcoxon_p": round(float(wilcoxon(means).pvalue), 4)})
    return rows


def write(path, rows, pooled=None):
    """Merge ``rows`` into the CSV at ``path`` (a dataset's rows replace its earlier ones; others kept), and
    ``pooled`` (:func:`pooled_rows`) into ``<path>-pooled.csv`` likewise, then the Markdown tables beside them,
    atomically."""
    merged = merged_into(path, rows, FIELDS)
    lines = ["The power of the issue-15 verdict (`benchmarks/verdict_power.py`): paired differences over seeds "
             "(AUC, each label at the rate its folder chose); `alpha` = Benjamini-Hochberg's level for the m-th "
             "smallest of M p-values (0.05 m / M, m = the tests a verdict needs to pass); the smallest mean "
             "difference a test at that level can find with the verdict's seeds and the measured spread; the seeds "
             "for 80% power to find the measured mean (two-sided paired t-test, noncentral t), at that level and "
             "uncorrected.", "",
             "| dataset | pair | seeds | mean difference (relative) | sd over seeds | alpha | smallest passing mean "
             "(seeds) | seeds for 80% power | uncorrected |", "|---" * 9 + "|"]
    for r in merged:
        lines.append(f"| {r['dataset']} | {r['pair']} | {r['seeds']} | {float(r['mean_difference']):+.4f} "
                     f"({r['relative_change']}) | {r['sd_difference']} | {r['alpha']} | {r['smallest_passing_mean']} "
                     f"({r['at_seeds']}) | {r['seeds_for_80_power']} | {r['seeds_for_80_power_uncorrected']} |")
    pooled_path = path[:-4] + "-pooled.csv"
    kept = merged_into(pooled_path, pooled, POOLED_FIELDS) if pooled is not None else read_rows(pooled_path)
    if kept:
        adjusted = corrected([float(r["t_p"]) for r in kept])
        lines += ["", "Pooled over backbones: each backbone's mean difference over the verdict's first seeds (or all), "
                  "tested across backbones (one-sample t-test, and its Benjamini-Hochberg correction over every row "
                  "of this table; exact Wilcoxon signed-rank).", "",
                  "| dataset | pairs | backbones | seeds | backbones ahead | mean difference | t-test p | corrected | "
                  "Wilcoxon p |", "|---" * 9 + "|"]
        lines += [f"| {r['dataset']} | {r['family']} | {r['backbones']} | {r['seeds']} | {r['positive']} | "
                  f"{float(r['mean_difference']):+.4f} | {r['t_p']} | {q:.4f} | {r['wilcoxon_p']} |"
                  for r, q in zip(kept, adjusted)]
    atomic_write_text(path[:-4] + ".md", "\n".join(lines) + "\n")
    return merged


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True)
    p.add_argument("--seeds", type=int, default=8, help="reported seeds each label has (the spread's estimate)")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--entry", action="append", required=True,
                   help="NAME=FOLDER|RATE[,RATE...]|LABEL[|KEY=VALUE;...] (the folder's --set settings)")
    p.add_argument("--pair", action="append", required=True, help="NAME_A,NAME_B: A against B")
    p.add_argument("--tests", type=int, default=54, help="tests in the verdict's table (its correction)")
    p.add_argument("--passing", type=int, default=8, help="tests a verdict needs to pass (4 backbones x 2)")
    p.add_argument("--at", type=int, default=3, help="the verdict's seeds")
    p.add_argument("--data_path", default="dataset/")
    p.add_argument("--out", required=True, help="the CSV (a Markdown table is written beside it)")
    args = p.parse_args(argv)
    try:
        test_level(args.tests, args.passing)
        if args.at < 2:
            raise ValueError(f"--at {args.at}: a paired t-test needs 2 or more seeds")
    except ValueError as e:
        raise SystemExit(str(e))
    values = {name: entry[3] for name, entry in
              load_entries(args.entry, args.dataset, args.seeds, args.epochs, args.data_path).items()}
    rows, differences = [], {}
    for pair in args.pair:
        a, b = split_pair(pair, values)
        rows.append(pair_row(args.dataset, f"{a} vs {b}", values[a], values[b], args.tests, args.passing, args.at))
        differences[f"{a} vs {b}"] = paired_differences(values[a], values[b])
    write(args.out, rows, pooled_rows(args.dataset, differences, args.at))
    print(open(args.out[:-4] + ".md").read())
    return rows


if __name__ == "__main__":
    main()
