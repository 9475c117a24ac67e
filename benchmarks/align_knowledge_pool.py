"""Does popularity alignment make better knowledge *across alignment runs*? The knowledge of several aligned models
(one ``benchmarks/align_knowledge_words.py`` result per run: other seeds, other samples) pooled against the one base
model's, on the same users and validation rows.

    python benchmarks/align_knowledge_pool.py --runs seed0=A/knowledge-words.json seed1=B/... seed2=C/... \
        --out DIR [--variant words|plain] [--resamples 1000]

Each run's result names its item stores (``stores``); ``--variant words`` takes every run's ``aligned+words`` store
against the shared ``base+words`` one (``plain``: ``aligned`` / ``base``, the plain item texts, where every run has
them). Users are the ``items`` recipe's means of their training positives' vectors (the pipeline's
:func:`recbole_llm4msr.knowledge.extract.user_means`), normalised as a run with that ``knowledge_norm`` sees them.
Per normalisation:

* each run's ``aligned - base`` (paired user bootstrap, :func:`recbole_llm4msr.knowledge.report.auc_difference`);
* **pooled over users** (fixed runs): the mean of the runs' differences, every AUC on the same user resample — is the
  average aligned model better *on these users*;
* **over runs** (the runs as a sample of alignments): a one-sample t-test of the runs' differences against 0 — does
  an alignment run *replicate*; with 3 runs it has little power, and it is reported as such.

The pooled tests are Benjamini-Hochberg adjusted over the normalisations (``p_bh``; the question asked once per
normalisation). Reads the training and validation splits only. Writes ``DIR/knowledge-pool.json`` and
``DIR/knowledge-pool.png`` (a forest plot).
"""
import argparse
import json
import logging
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from align_knowledge_words import NORMS, normalise, probe_data, user_vectors  # noqa: E402
from align_seeds import forest, save_figure  # noqa: E402

from recbole_llm4msr.atomic import atomic_write_json  # noqa: E402
from recbole_llm4msr.compare import corrected  # noqa: E402
from recbole_llm4msr.knowledge import store as kstore  # noqa: E402
from recbole_llm4msr.knowledge.report import auc, auc_difference, neighbour_scores  # noqa: E402

logger = logging.getLogger("align_knowledge_pool")
VARIANTS = {"words": ("aligned+words", "base+words"), "plain": ("aligned", "base")}


def read_runs(specs, variant):
    """``NAME=FILE`` pairs -> (dataset, k, {name: aligned store}, base store), checked to be one comparison: the same
    dataset, k and base store in every file, every store present."""
    if variant not in VARIANTS:
        raise ValueError(f"--variant must be one of {sorted(VARIANTS)}, not '{variant}'")
    if len(specs) < 2:
        raise ValueError(f"--runs: give at least two runs to pool (got {len(specs)})")
    key_a, key_b = VARIANTS[variant]
    runs, seen = {}, {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"--runs {spec!r}: write NAME=FILE (a result of benchmarks/align_knowledge_words.py)")
        if name in runs:
            raise ValueError(f"--runs: the name '{name}' is given twice")
        if not os.path.isfile(path):
            raise ValueError(f"--runs {name}: no file {path}")
        result = json.load(open(path))
        stores = result.get("stores", {})
        for key in (key_a, key_b):
            if key not in stores:
                raise ValueError(f"{path}: no '{key}' store (it has {sorted(stores)}); --variant {variant} needs it "
                                 f"in every run" + (" (run the benchmark with --plain_stores)" if variant == "plain"
                                                    else ""))
            if not kstore.is_complete(stores[key]["store"]):
                raise ValueError(f"{path}: its '{key}' store {stores[key]['store']} is missing or unfinished; rerun "
                                 f"benchmarks/align_knowledge_words.py for '{name}' (it resumes)")
        for field, value in (("dataset", result.get("dataset")), ("k", result.get("k")),
                             ("base store", stores[key_b]["store"])):
            if seen.setdefault(field, (value, name))[0] != value:
                raise ValueError(f"{path}: {field} {value!r} differs from run '{seen[field][1]}''s "
                                 f"{seen[field][0]!r}: these runs are not one comparison")
        runs[name] = stores[key_a]["store"]
    return seen["dataset"][0], int(seen["k"][0]), runs, seen["base store"][0]


def pool(runs, base, data, k, resamples=1000, seed=0):
    """The per-run, pooled and over-runs differences per normalisation (see the module docstring)."""
    from scipy import stats

    users, positives, train, rows = data["users"], data["positives"], data["train"], data["rows"]
    y, groups = data["y"], data["groups"]
    dataset = data["files"].name
    vectors = {name: user_vectors(path, users, positives, dataset) for name, path in runs.items()}
    base_vectors = user_vectors(base, users, positives, dataset)
    out = {"runs": dict(runs), "base": base, "users": len(users), "rows": int(len(rows)), "k": k,
           "resamples": resamples, "profile_auc": auc(y, data["profile"]), "by_norm": {}}
    for norm in NORMS:
        b = neighbour_scores(users, normalise(base_vectors, norm), train, rows, k)
        scores = {name: neighbour_scores(users, normalise(v, norm), train, rows, k) for name, v in vectors.items()}
        per_run = {name: auc_difference(y, s, b, groups, resamples, seed) for name, s in scores.items()}
        diffs = [d["difference"] for d in per_run.values()]
        spread = float(np.std(diffs, ddof=1))
        t = stats.ttest_1samp(diffs, 0.0) if spread > 0 else None  # identical differences: no spread, no test
        out["by_norm"][norm] = {
            "auc": {"base": auc(y, b), **{name: auc(y, s) for name, s in scores.items()}},
            "per_run": per_run,
            "pooled": auc_difference(y, list(scores.values()), b, groups, resamples, seed),
            "over_runs": {"mean": round(float(np.mean(diffs)), 4) + 0.0, "sd": round(spread, 4),
                          "t": None if t is None else round(float(t.statistic), 3),
                          "p": None if t is None else round(float(t.pvalue), 4), "runs": len(diffs),
                          "test": "one-sample t-test of the runs' differences against 0, two-sided"}}
        logger.info(f"{norm}: pooled {out['by_norm'][norm]['pooled']}; over runs {out['by_norm'][norm]['over_runs']}")
    adjusted = corrected([out["by_norm"][n]["pooled"]["p"] for n in NORMS])
    for norm, p_bh in zip(NORMS, adjusted):
        out["by_norm"][norm]["pooled"]["p_bh"] = round(p_bh, 4)
    out["correction"] = f"Benjamini-Hochberg over the {len(NORMS)} pooled tests (one per knowledge_norm): p_bh"
    return out


def plot(out, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(NORMS), figsize=(4 * len(NORMS), 0.5 * len(out["runs"]) + 2), squeeze=False,
                             sharey=True)
    for ax, norm in zip(axes[0], NORMS):
        res = out["by_norm"][norm]
        rows = [*res["per_run"].items(), ("pooled", res["pooled"])]
        forest(ax, [(name, d["difference"], *d["ci95"]) for name, d in rows], f"knowledge_norm: {norm}",
               "probe AUC, aligned − base (95% CI)")
    save_figure(fig, path)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", nargs="+", required=True, metavar="NAME=FILE")
    p.add_argument("--out", required=True, help="folder for knowledge-pool.json and knowledge-pool.png")
    p.add_argument("--variant", default="words", help="words: the item texts with their popularity words; plain")
    p.add_argument("--data_path", default=os.path.join(ROOT, "dataset"))
    p.add_argument("--base", default="smollm2", help="the base model (its name is only used for the split's plan)")
    p.add_argument("--resamples", type=int, default=1000)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    dataset, k, runs, base = read_runs(args.runs, args.variant)
    data = probe_data(dataset, args.data_path, args.base, k)
    out = dict(pool(runs, base, data, k, args.resamples), dataset=dataset, variant=args.variant)
    os.makedirs(args.out, exist_ok=True)
    atomic_write_json(os.path.join(args.out, "knowledge-pool.json"), out, indent=2)
    plot(out, os.path.join(args.out, "knowledge-pool.png"))
    logger.info(f"wrote {args.out}/knowledge-pool.json and .png")
    return out


if __name__ == "__main__":
    main()
