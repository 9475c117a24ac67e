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

from benchmarks.profile_knowledge import add_source_args, open_source, probe, write_store  # noqa: E402
from recbole_llm4msr.atomic import atomic_write_json  # noqa: E402
from recbole_llm4msr.knowledge import store as kstore  # noqa: E402
from recbole_llm4msr.knowledge.fingerprint import store_key, text_digest  # noqa: E402
from recbole_llm4msr.knowledge.report import auc, neighbour_scores  # noqa: E402

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
    from collections import defaultdict

    from sklearn.feature_extraction.text import TfidfVectorizer

    pos = train[train["label"] > 0.5]
    docs = defaultdict(list)
    for u, i in zip(pos["user"], pos["item"]):
        if str(i) in category:
            docs[u].append(f"c{category[str(i)]}")
    return TfidfVectorizer(token_pattern=r"\S+", sublinear_tf=True).fit_transform([" ".join(docs.get(u, [])) for u in users])


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
        return path, json.load(open(os.path.join(path, "cluster-knowledge.json")))["info"]
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
            "seconds": round(time.perf_counter() - start, 1), "users": len(users)}
    atomic_write_json(os.path.join(path, "cluster-knowledge.json"), {"info": info}, indent=2)
    return path, info


def main(argv=None):
    from recbole_llm4msr.knowledge.extract import check_store

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_source_args(p)
    p.add_argument("--clusters", type=int, default=1024)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--random", action="store_true", help="the control: random categories of the same sizes")
    args = p.parse_args(argv)
    spec, source, files, cache, profile = open_source(args)
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
