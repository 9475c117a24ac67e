"""LLM knowledge as a bag of latent categories: a user = the TF-IDF histogram of the LLM-space clusters of the items
the user liked, reduced by truncated SVD to the source store's width, written as a knowledge store.

    python benchmarks/cluster_knowledge.py --dataset amazon-art-office --clusters 1024 [--random]

Why: LLM4MSR given a bag of the user's items *and their words* as knowledge (``profile_knowledge.py``) beats the
default (the mean of the user's liked items' LLM vectors) downstream, and the bag of item ids alone does not (session
29): the mean blurs what a bag keeps. This keeps the LLM as the only source of item similarity (no words, no ids):
the items' vectors of the default store (unit length) are clustered with scikit-learn's MiniBatchKMeans into
``--clusters`` latent categories (TSLRec clusters item embeddings the same way), and a user is the bag of the
categories of their training positives, TF-IDF weighted (sublinear tf) and reduced by truncated SVD as the profile
is. ``--random``: the control — every item in a random category of the same sizes (the LLM's similarity removed).

Prints the store path and writes ``cluster-knowledge.json`` in it (K, sizes, SVD explained variance, the neighbour
probe of the dense vectors under each ``knowledge_norm`` and of the sparse bag, the no-LLM profile's). Reads the
training and validation splits only. ``llm4msr-compare ... --set knowledge_store=PATH`` runs LLM4MSR on it.

    python benchmarks/cluster_knowledge.py --dataset ml-100k-msr --sweep 16,32,64,128,256 \
        --out benchmarks/results/cluster-knowledge-ml-100k-msr.csv

``--sweep``: for each K the LLM's categories and the random control (both stores built or found), the neighbour
probe of each store's vectors as the runs use them (``knowledge_norm: none``) and of the sparse bags, against the
default knowledge (under the normalisation ``auto`` chooses) and the no-LLM profile, with paired bootstrap 95%
intervals over users for LLM categories − random categories and LLM categories − the default; a CSV, the Markdown
table and a PNG beside it (rows of other datasets in the CSV are kept).
"""
import argparse
import json
import logging
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks.knowledge_quality import interval, merged_into  # noqa: E402
from benchmarks.profile_knowledge import (add_source_args, checked_reuse, open_source, probe,  # noqa: E402
                                          sklearn_version, token_bags, write_store)
from recbole_llm4msr.atomic import atomic_path, atomic_write_json, atomic_write_text  # noqa: E402
from recbole_llm4msr.knowledge import store as kstore  # noqa: E402
from recbole_llm4msr.knowledge.fingerprint import store_key, text_digest  # noqa: E402
from recbole_llm4msr.knowledge.report import auc, auc_difference, choose_norm, neighbour_scores, norm_scores  # noqa: E402

logger = logging.getLogger("cluster_knowledge")


def item_clusters(source, clusters, seed=0, random=False):
    """{item token: category} from MiniBatchKMeans of ``source``'s unit-length item vectors; ``random``: the same
    category sizes, items assigned at random."""
    from sklearn.cluster import MiniBatchKMeans

    if "item" not in (source.header.get("kinds") or {}):
        raise ValueError(f"{source.path} holds no item vectors (built with knowledge_user_vector: items they are kept); "
                         f"give --source a store of the default recipe")
    items = list(source.ids("item"))
    if not 2 <= clusters < len(items):
        raise ValueError(f"--clusters {clusters}: between 2 and the {len(items)} items of {source.path}")
    x = np.asarray(source.vectors("item"), dtype=np.float32)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    labels = MiniBatchKMeans(clusters, random_state=seed, n_init=3, batch_size=4096).fit_predict(x)
    if random:
        labels = np.random.default_rng(seed).permutation(labels)
    return dict(zip(map(str, items), labels.tolist()))


def cluster_bags(users, train, category):
    """TF-IDF (sublinear tf) of each user's training positives' categories, rows in ``users`` order."""
    return token_bags(users, train, {i: [f"c{c}"] for i, c in category.items()})


def cluster_store(source, files, clusters, cache_dir, seed=0, random=False, category=None):
    """Write (or find) the store; returns (path, info). ``category``: :func:`item_clusters` with the same arguments,
    when the caller has it already (the clustering is the slow part: minutes for 30k items)."""
    from sklearn.decomposition import TruncatedSVD

    dim = source.dim
    kind = "random" if random else "kmeans"
    fingerprint = dict(source.fingerprint, llm=text_digest({"clusters": clusters, "kind": kind, "seed": seed,
                                                            "of": source.fingerprint.get("llm"), "svd": dim}),
                       mode="clusters", pooling=None, dtype="float32")
    name = f"{source.header.get('model')}-{kind}{clusters}-svd{dim}"
    path = kstore.store_path(cache_dir, source.header["dataset"], name, "clusters", store_key(fingerprint))
    if kstore.is_complete(path):
        return path, checked_reuse(path, "cluster-knowledge.json", "info")
    start = time.perf_counter()
    category = item_clusters(source, clusters, seed, random) if category is None else category
    users = list(source.ids("user"))
    sparse = cluster_bags(users, files.train_interactions(), category)
    svd = TruncatedSVD(min(dim, min(sparse.shape) - 1), random_state=seed)
    dense = svd.fit_transform(sparse).astype(np.float32)
    if dense.shape[1] < dim:  # fewer categories than the width: zero-padded (a store has one width)
        dense = np.pad(dense, ((0, 0), (0, dim - dense.shape[1])))
    write_store(path, source, list(source.ids("scenario")), source.vectors("scenario"), users, dense, model=name,
                llm=f"{source.header.get('llm')} item clusters ({kind}, K={clusters}) + TF-IDF + truncated SVD",
                mode="clusters", user_vector="clusters", fingerprint=fingerprint, cluster_source=source.path)
    sizes = np.bincount(list(category.values()), minlength=clusters)
    info = {"clusters": clusters, "kind": kind, "seed": seed, "dim": dim,
            "cluster_size": {"min": int(sizes.min()), "median": float(np.median(sizes)), "max": int(sizes.max())},
            "explained_variance": round(float(svd.explained_variance_ratio_.sum()), 4),
            "seconds": round(time.perf_counter() - start, 1), "users": len(users), "sklearn": sklearn_version()}
    atomic_write_json(os.path.join(path, "cluster-knowledge.json"), {"info": info}, indent=2)
    return path, info


SWEEP_FIELDS = ["dataset", "clusters", "items_per_category", "rows", "llm_categories", "random_categories", "default",
                "default_norm", "profile", "llm_sparse", "random_sparse", "llm_minus_random", "llm_minus_default",
                "explained_variance", "store", "random_store"]


def sweep(source, files, cache, ks, k=20, seed=0, profile=None):
    """Rows of :data:`SWEEP_FIELDS`, one per K in ``ks``: the LLM's categories against random ones of the same sizes
    and against the default knowledge, on the validation rows of the source store's users."""
    users = list(source.ids("user"))
    train, valid = files.train_interactions(), files.split_interactions("valid")
    known = valid[valid["user"].isin(set(users))]
    y, who = known["label"].to_numpy(), known["user"].to_numpy()
    norm = choose_norm(source, files, k=k)["chosen"]
    default = norm_scores(source, users, np.asarray(source.vectors("user"), dtype=np.float32), train, known, k, norm)
    reference = None if profile is None else auc(y, neighbour_scores(users, profile, train, known, k))
    items = len(source.ids("item"))
    rows = []
    for clusters in ks:
        scores, sparse, paths, infos = {}, {}, {}, {}
        for kind, random in (("llm", False), ("random", True)):
            category = item_clusters(source, clusters, seed, random)
            paths[kind], infos[kind] = cluster_store(source, files, clusters, cache, seed, random, category)
            store = kstore.KnowledgeStore(paths[kind])
            if list(store.ids("user")) != users:
                raise ValueError(f"{paths[kind]} holds other users than its source {source.path}: delete it and rerun")
            scores[kind] = neighbour_scores(users, np.asarray(store.vectors("user"), dtype=np.float32), train, known, k)
            sparse[kind] = auc(y, neighbour_scores(users, cluster_bags(users, train, category), train, known, k))
            logger.info(f"K={clusters} {kind}: probe {auc(y, scores[kind])} (sparse {sparse[kind]})")
        rows.append({"dataset": source.header["dataset"], "clusters": clusters,
                     "items_per_category": round(items / clusters, 1), "rows": len(known),
                     "llm_categories": auc(y, scores["llm"]), "random_categories": auc(y, scores["random"]),
                     "default": auc(y, default), "default_norm": norm, "profile": reference,
                     "llm_sparse": sparse["llm"], "random_sparse": sparse["random"],
                     "llm_minus_random": interval(auc_difference(y, scores["llm"], scores["random"], who, seed=seed)),
                     "llm_minus_default": interval(auc_difference(y, scores["llm"], default, who, seed=seed)),
                     "explained_variance": infos["llm"]["explained_variance"],
                     "store": os.path.basename(paths["llm"]), "random_store": os.path.basename(paths["random"])})
    return rows


def write_sweep(path, rows):
    """Merge ``rows`` into the CSV at ``path`` (a dataset's rows replace its earlier ones, in place; others kept),
    then the Markdown table and the PNG beside it, atomically."""
    merged = merged_into(path, rows, SWEEP_FIELDS)
    lines = ["LLM knowledge as a bag of latent item categories (`benchmarks/cluster_knowledge.py --sweep`): MiniLM item "
             "vectors of the default store k-means'd into K categories, a user = the TF-IDF bag of their liked items' "
             "categories, SVD to the store's width; the control: random categories of the same sizes. Neighbour probe "
             "(k = 20) on the validation rows: the store's vectors as the runs use them (`knowledge_norm: none`), the "
             "sparse bags, the default knowledge (normalised as `auto` chooses) and the no-LLM profile (items + all "
             "words); differences with their paired bootstrap 95% interval over users (200 resamples)", "",
             "| dataset | K | items per category | LLM categories | random categories | default (norm) | no-LLM profile | "
             "LLM sparse | random sparse | LLM − random [95% CI] | LLM − default [95% CI] |", "|---" * 11 + "|"]
    for r in merged:
        lines.append("| " + " | ".join(str(v) for v in (
            r["dataset"], r["clusters"], r["items_per_category"], r["llm_categories"], r["random_categories"],
            f"{r['default']} ({r['default_norm']})", r["profile"], r["llm_sparse"], r["random_sparse"],
            r["llm_minus_random"], r["llm_minus_default"])) + " |")
    atomic_write_text(path[:-4] + ".md", "\n".join(lines) + "\n")
    plot_sweep(path[:-4] + ".png", merged)


def plot_sweep(path, rows):
    """One panel per dataset: probe AUC against K for LLM and random categories, the default and the profile."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    fig, axes = plt.subplots(1, len(datasets), figsize=(5 * len(datasets), 4), squeeze=False)
    for ax, d in zip(axes[0], datasets):
        mine = sorted((r for r in rows if r["dataset"] == d), key=lambda r: int(r["clusters"]))
        ks = [int(r["clusters"]) for r in mine]
        for col, label, style in (("llm_categories", "LLM categories", "o-"),
                                  ("random_categories", "random categories", "s--")):
            ax.plot(ks, [float(r[col]) for r in mine], style, label=label)
        ax.axhline(float(mine[0]["default"]), color="k", lw=1, label=f"default knowledge ({mine[0]['default_norm']})")
        if mine[0]["profile"] not in (None, ""):
            ax.axhline(float(mine[0]["profile"]), color="grey", ls=":", label="no-LLM profile")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("K (categories)")
        ax.set_ylabel("neighbour probe AUC (validation)")
        ax.set_title(d)
        ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


def main(argv=None):
    from recbole_llm4msr.knowledge.extract import check_store

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_source_args(p)
    p.add_argument("--clusters", type=int, default=1024)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--random", action="store_true", help="the control: random categories of the same sizes")
    p.add_argument("--sweep", default=None, help="comma-separated K values: LLM and random categories for each, "
                   "probed against the default knowledge; written to --out")
    p.add_argument("--out", default=None, help="with --sweep: the CSV (default benchmarks/results/"
                   "cluster-knowledge-<dataset>.csv)")
    args = p.parse_args(argv)
    if args.sweep is not None:
        try:
            ks = [int(v) for v in args.sweep.split(",") if v.strip()]
        except ValueError:
            raise SystemExit(f"--sweep {args.sweep!r}: comma-separated whole numbers of categories, e.g. 16,64,256")
        if not ks:
            raise SystemExit("--sweep: give at least one number of categories, e.g. 16,64,256")
    spec, source, files, cache, profile = open_source(args)
    if args.sweep is not None:
        out = args.out or os.path.join(ROOT, "benchmarks", "results", f"cluster-knowledge-{args.dataset}.csv")
        rows = sweep(source, files, cache, ks, args.k, args.seed, profile)
        write_sweep(out, rows)
        print(open(out[:-4] + ".md").read())
        return rows
    category = item_clusters(source, args.clusters, args.seed, args.random)  # once: for the store and the probe
    path, info = cluster_store(source, files, args.clusters, cache, args.seed, args.random, category)
    logger.info(f"cluster store {path}: {info}")
    check_store(path, spec)  # a run will accept it
    store = kstore.KnowledgeStore(path)
    users = list(store.ids("user"))
    train, valid = files.train_interactions(), files.split_interactions("valid")
    known = valid[valid["user"].isin(set(users))]
    sparse = cluster_bags(users, train, category)
    aucs = probe(path, files, args.k, profile)
    aucs["sparse bag of clusters"] = auc(known["label"], neighbour_scores(users, sparse, train, known, args.k))
    result = {"info": info, "probe_auc": aucs, "store": path, "source": source.path}
    atomic_write_json(os.path.join(path, "cluster-knowledge.json"), result, indent=2)
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
