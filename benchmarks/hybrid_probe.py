"""Does an LLM's knowledge add to the bag of items, store against store? The neighbour probe of hybrids.

``benchmarks/hybrid_knowledge.py`` writes one hybrid store (and its control) for runs. This asks the probe's question
for several LLM stores at once, without writing stores: each store's user vectors — a user store's own, or for an
item store (e.g. ``benchmarks/align_knowledge_words.py``'s worded item stores) each user's mean over the training
positives, as the pipeline's ``items`` recipe makes them — under ``--llm_norm`` (the loader's statistics), become the
LLM block of ``[LLM | profile SVD]``, each block centred to unit mean norm exactly as the hybrid store does
(``hybrid_knowledge.unit_block``). Every store is probed alone (under ``--llm_norm``) and as a hybrid on the same
validation rows; ``--pair A,B`` gives hybrid A − hybrid B (``profile``: the sparse no-LLM profile) with its paired
bootstrap interval over users, Benjamini-Hochberg over the pairs named; ``--pool REF`` pools every pair ``X,REF``
(several alignment runs against one base model): their mean and a one-sample t-test over the runs.

    python benchmarks/hybrid_probe.py --dataset amazon-art-office --profile PROFILE_STORE \\
        --store base=STORE --store run0=STORE --store run1=STORE \\
        --pair run0,base --pair run1,base --pair run0,profile --pool base --out result.json

Reads the training and validation splits only.
"""
import argparse
import json
import logging
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks.align_knowledge_words import normalise, probe_data, user_vectors  # noqa: E402
from benchmarks.hybrid_knowledge import unit_block  # noqa: E402
from recbole_llm4msr.atomic import atomic_write_json  # noqa: E402
from recbole_llm4msr.compare import corrected  # noqa: E402
from recbole_llm4msr.knowledge.loader import NORMS  # noqa: E402
from recbole_llm4msr.knowledge.report import auc, auc_difference, neighbour_scores  # noqa: E402

logger = logging.getLogger("hybrid_probe")
PROFILE = "profile"


def profile_block(path, users, dataset):
    """The profile store's SVD vectors of ``users`` (in that order; a user it lacks is an error naming the store) as
    :func:`unit_block` makes the hybrid's block."""
    return unit_block(user_vectors(path, users, None, dataset))


def parse_labelled(values):
    """``["label=PATH", ...]`` -> {label: path}; a missing ``=``, a repeated label or the reserved ``profile`` is an
    error naming it."""
    out = {}
    for value in values:
        label, sep, path = value.partition("=")
        if not sep or not label or not path:
            raise ValueError(f"--store {value!r}: write LABEL=PATH")
        if label == PROFILE or label in out:
            raise ValueError(f"--store label {label!r} is " + ("reserved for the sparse profile" if label == PROFILE
                                                                else "given twice"))
        out[label] = path
    return out


def parse_pairs(values, labels):
    pairs = []
    for value in values:
        a, sep, b = value.partition(",")
        unknown = [x for x in (a, b) if x not in labels and x != PROFILE]
        if not sep or unknown or a == b:
            raise ValueError(f"--pair {value!r}: write A,B with two different labels among "
                             f"{', '.join(sorted(labels))} or '{PROFILE}'" + (f" (unknown: {unknown})" if unknown else ""))
        pairs.append((a, b))
    return pairs


def hybrid_probe(dataset, data_path, profile, stores, pairs, llm_norm="whiten", k=20, resamples=1000, pool=None):
    """The result (see the module's doc) for ``stores`` ({label: path}) and ``pairs`` ([(A, B)])."""
    if llm_norm not in NORMS:
        raise ValueError(f"--llm_norm must be one of {', '.join(NORMS)}, not '{llm_norm}'")
    if pool is not None and not any(b == pool for _, b in pairs):
        raise ValueError(f"--pool {pool}: no --pair X,{pool} to pool")
    data = probe_data(dataset, data_path, "minilm", k)
    users, train, rows, y, groups = (data[n] for n in ("users", "train", "rows", "y", "groups"))
    prof = profile_block(profile, users, dataset)
    scores = {PROFILE: data["profile"]}
    out = {"dataset": dataset, "profile_store": profile, "stores": stores, "llm_norm": llm_norm, "k": k,
           "users": len(users), "rows": int(len(rows)), "probe_auc": {"sparse profile": auc(y, data["profile"]),
                                                                        "profile SVD": auc(y, neighbour_scores(
                                                                            users, prof, train, rows, k))},
           "alone": {}, "hybrid": {}, "differences": {}}
    for label, path in stores.items():
        vectors = normalise(user_vectors(path, users, data["positives"], dataset), llm_norm)
        out["alone"][label] = auc(y, neighbour_scores(users, vectors, train, rows, k))
        scores[label] = neighbour_scores(users, np.concatenate([unit_block(vectors), prof], 1), train, rows, k)
        out["hybrid"][label] = auc(y, scores[label])
        logger.info(f"{label}: alone {out['alone'][label]}, hybrid {out['hybrid'][label]}")
    names = [f"{a} - {b}" for a, b in pairs]
    for name, (a, b) in zip(names, pairs):
        out["differences"][name] = auc_difference(y, scores[a], scores[b], groups, n_boot=resamples)
    for name, p in zip(names, corrected([out["differences"][n]["p"] for n in names]) if names else []):
        out["differences"][name]["p_bh"] = round(float(p), 4)
    if pool is not None:
        from scipy.stats import ttest_1samp

        pooled = {a: out["differences"][f"{a} - {b}"]["difference"] for a, b in pairs if b == pool}
        values = list(pooled.values())
        out["pooled"] = {"versus": pool, "runs": pooled, "mean": round(float(np.mean(values)), 5),
                         "sd": round(float(np.std(values, ddof=1)), 5) if len(values) > 1 else None,
                         "t_test_p": round(float(ttest_1samp(values, 0).pvalue), 4) if len(values) > 2 else None}
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="amazon-art-office")
    p.add_argument("--data_path", default=os.path.join(ROOT, "dataset"))
    p.add_argument("--profile", required=True, help="the profile store (benchmarks/profile_knowledge.py)")
    p.add_argument("--store", action="append", default=[], metavar="LABEL=PATH", help="an LLM store; repeatable")
    p.add_argument("--pair", action="append", default=[], metavar="A,B", help="hybrid A - hybrid B; repeatable")
    p.add_argument("--pool", default=None, metavar="REF", help="pool the pairs X,REF (runs against one reference)")
    p.add_argument("--llm_norm", default="whiten", choices=NORMS)
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--resamples", type=int, default=1000)
    p.add_argument("--out", required=True, help="the result JSON")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        stores = parse_labelled(args.store)
        if not stores:
            raise ValueError("give at least one --store LABEL=PATH")
        out = hybrid_probe(args.dataset, args.data_path, args.profile, stores, parse_pairs(args.pair, stores),
                           args.llm_norm, args.k, args.resamples, args.pool)
    except ValueError as e:
        raise SystemExit(f"hybrid_probe: {e}")
    atomic_write_json(args.out, out, indent=2)
    print(json.dumps({k: out[k] for k in ("probe_auc", "alone", "hybrid", "differences", "pooled") if k in out},
                     indent=2))
    return out


if __name__ == "__main__":
    main()
