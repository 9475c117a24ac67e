"""A positive control for LLM4MSR: the no-LLM profile as its knowledge.

The neighbour probe's reference is a no-LLM profile (TF-IDF of a user's training positives and their item words).
This writes that profile, reduced to the source store's width by truncated SVD (fitted on the store's training users),
as the user vectors of a knowledge store next to the default one -- same dataset fingerprint, same scenario vectors,
its own ``llm`` fingerprint part (``no-LLM profile``) -- so that ``llm4msr-compare ... --set knowledge_store=PATH``
runs LLM4MSR and its shuffled control on it (the session-24 runs used ``knowledge_norm: none``, the default then and
the dense profile's best probe: name it, ``--set knowledge_norm=none``, to reproduce them). The question it answers: if the knowledge were exactly as informative
as the bag of items the probe measures against, would LLM4MSR beat its plain backbone and its control? (A limit of
the fusion and the data, or of the LLM's vectors?)

    python benchmarks/profile_knowledge.py --dataset amazon-art-office [--source STORE]

Prints the store path and writes ``profile-knowledge.json`` in it: the probe AUC of the dense vectors (as a run
sees them under each ``knowledge_norm``) beside the sparse profile's, the SVD's explained variance and the time.
Reads the training and validation splits only. ``--source`` is the store whose scenario vectors and data
fingerprint are taken (default: the dataset's default knowledge store, built if missing).
"""
import argparse
import json
import logging
import os
import shutil
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from recbole_llm4msr.atomic import atomic_write_json  # noqa: E402
from recbole_llm4msr.knowledge import store as kstore  # noqa: E402
from recbole_llm4msr.knowledge.files import DatasetFiles, dataset_settings  # noqa: E402
from recbole_llm4msr.knowledge.fingerprint import store_key, text_digest  # noqa: E402
from recbole_llm4msr.knowledge.loader import NORMS  # noqa: E402
from recbole_llm4msr.knowledge.report import (ITEMS_CATEGORIES, ITEMS_ONLY, PROFILE, auc,  # noqa: E402
                                              neighbour_scores, norm_scores, profile_vectors, reference_texts)

logger = logging.getLogger("profile_knowledge")
MODEL_NAME = "no-LLM-profile"


REFERENCES = {"items+words": PROFILE, "items": ITEMS_ONLY, "items+categories": ITEMS_CATEGORIES,
              "items+dislikes": None}
# ^ --reference -> the report's reference; the first: the probe's profile (and the old stores')


def token_bags(users, train, tokens):
    """TF-IDF (sublinear tf) of each user's training positives' ``tokens`` ({item: [token]}; an item without tokens
    adds none), rows in ``users`` order: the bag behind the cluster and the expanded-word knowledge."""
    from collections import defaultdict

    from sklearn.feature_extraction.text import TfidfVectorizer

    pos = train[train["label"] > 0.5]
    docs = defaultdict(list)
    for u, i in zip(pos["user"], pos["item"]):
        docs[u].extend(tokens.get(i, ()))
    return TfidfVectorizer(token_pattern=r"\S+", lowercase=False, sublinear_tf=True).fit_transform(
        [" ".join(docs.get(u, [])) for u in users])


def dislike_bags(users, train):
    """TF-IDF (sublinear tf, as the profile) of each user's training items: ``item_<id>`` for a liked one,
    ``not_item_<id>`` for a disliked one."""
    import pandas as pd
    from sklearn.feature_extraction.text import TfidfVectorizer

    liked = train["label"].to_numpy() > 0.5
    tokens = pd.Series(np.where(liked, "item_", "not_item_"), index=train.index) + train["item"].astype(str)
    docs = tokens.groupby(train["user"].to_numpy(), sort=False).agg(" ".join).to_dict()
    return TfidfVectorizer(token_pattern=r"\S+", lowercase=False, sublinear_tf=True).fit_transform(
        [docs.get(u, "") for u in users])


def sparse_profile(source, files, reference="items+words"):
    """A no-LLM profile of ``source``'s users (rows in its user order): the probe's (``items+words``: item ids and
    every word of the item texts), or a lesser one (``items``: ids alone; ``items+categories``: ids and the words of
    the ``item_text_fields`` after the title; ``report.reference_texts``), or ``items+dislikes``: the ids of the liked
    items beside those of the disliked ones (:func:`dislike_bags`; for datasets whose negatives are the users' own)."""
    if reference not in REFERENCES:
        raise ValueError(f"--reference {reference!r}: one of {', '.join(REFERENCES)}")
    if reference == "items+dislikes":
        return dislike_bags(list(source.ids("user")), files.train_interactions())
    texts = reference_texts(files, REFERENCES[reference])
    if texts is None:
        raise ValueError(f"--reference items+categories: dataset '{files.name}' has no item_text_fields after the "
                         f"title ({files.config.get('item_text_fields')}); use items or items+words")
    return profile_vectors(list(source.ids("user")), files.train_interactions(), texts)


def write_store(path, source, scenarios, scenario_vectors, users, user_vectors, **header):
    """A one-shard store at ``path`` of made (not extracted) vectors: ``source``'s header minus its geometry, with
    ``header``'s entries over it (merge writes kinds, width and dtype). Leftover chunks of a killed run are dropped
    (cheap to make again: seconds)."""
    shutil.rmtree(f"{path}.work", ignore_errors=True)
    writer = kstore.ShardWriter(path)
    for kind, ids, vectors in (("scenario", scenarios, scenario_vectors), ("user", users, user_vectors)):
        writer.write_chunk(kind, ids, np.asarray(vectors, dtype=np.float32),
                           [{"kind": kind, "id": i, "prompt": None, "text": None} for i in ids])
    writer.mark_done({"num_shards": 1, "shard_id": 0})
    merged = {k: v for k, v in source.header.items() if k != "geometry"}
    merged.update(pooling=None, llm_dtype="float32", **header)
    kstore.merge(path, merged, {"scenario": scenarios, "user": users})


def sklearn_version():
    import sklearn

    return sklearn.__version__


def checked_reuse(path, name, key):
    """The ``key`` entry of the JSON file ``name`` a made store keeps at ``path`` (its info), with a warning when it
    was made under another scikit-learn: its key holds the recipe, not the library, and TruncatedSVD /
    MiniBatchKMeans may give other vectors under another version (stores made before the version was recorded warn
    too)."""
    with open(os.path.join(path, name)) as f:
        info = json.load(f)[key]
    made, now = info.get("sklearn"), sklearn_version()
    if made != now:
        logger.warning(f"{path} was made with scikit-learn {made or '(not recorded)'}, this is {now}: its vectors may "
                       f"differ from a fresh build of the same recipe; delete the folder to rebuild it")
    return info


def profile_store(source, files, dim, cache_dir, seed=0, sparse=None, reference="items+words"):
    """Write (or find) the store of ``source``'s users with SVD-``dim`` profile vectors; returns (path, info).
    ``sparse``: :func:`sparse_profile` of ``reference``, when the caller has it already."""
    from sklearn.decomposition import TruncatedSVD

    if dim != source.dim:
        raise ValueError(f"--dim {dim}: the scenario vectors are taken from {source.path} ({source.dim}-d) and a store "
                         f"has one width; use --dim {source.dim} (the default)")
    users = list(source.ids("user"))
    if reference not in REFERENCES:
        raise ValueError(f"--reference {reference!r}: one of {', '.join(REFERENCES)}")
    fingerprint = dict(source.fingerprint, llm=text_digest({"profile": f"tfidf {reference}", "svd": dim, "seed": seed}),
                       mode="profile", pooling=None, dtype="float32")
    name = MODEL_NAME + ("" if reference == "items+words" else "-" + reference.replace("+", "-")) + f"-svd{dim}"
    path = kstore.store_path(cache_dir, source.header["dataset"], name, "profile", store_key(fingerprint))
    if kstore.is_complete(path):
        return path, checked_reuse(path, "profile-knowledge.json", "svd")
    start = time.perf_counter()
    sparse = sparse_profile(source, files, reference) if sparse is None else sparse
    if dim >= min(sparse.shape):
        raise ValueError(f"--dim {dim} must be below the profile's rank bound {min(sparse.shape)}")
    svd = TruncatedSVD(dim, random_state=seed)
    dense = svd.fit_transform(sparse).astype(np.float32)
    write_store(path, source, list(source.ids("scenario")), source.vectors("scenario"), users, dense,
                model=name, llm="none (TF-IDF profile + truncated SVD)" if reference == "items+words" else
                f"none (TF-IDF profile of {reference} + truncated SVD)", mode="profile",
                user_vector="profile", fingerprint=fingerprint, profile_source=source.path)
    info = {"reference": reference, "dim": dim, "explained_variance": round(float(svd.explained_variance_ratio_.sum()), 4),
            "seconds": round(time.perf_counter() - start, 1), "users": len(users), "sklearn": sklearn_version()}
    atomic_write_json(os.path.join(path, "profile-knowledge.json"), {"svd": info}, indent=2)
    return path, info


def probe(path, files, k=20, sparse=None, label="svd"):
    """The neighbour probe of the store's vectors as a run sees them under each ``knowledge_norm`` (keys
    ``"<label> <norm>"``), and of the sparse profile (``sparse``: :func:`sparse_profile`, when the caller has it
    already)."""
    store = kstore.KnowledgeStore(path)
    users = list(store.ids("user"))
    vectors = np.asarray(store.vectors("user"), dtype=np.float32)
    train, valid = files.train_interactions(), files.split_interactions("valid")
    known = valid[valid["user"].isin(set(users))]
    sparse = sparse_profile(store, files) if sparse is None else sparse
    out = {"sparse profile": auc(known["label"], neighbour_scores(users, sparse, train, known, k))}
    for norm in NORMS:
        out[f"{label} {norm}"] = auc(known["label"], norm_scores(store, users, vectors, train, known, k, norm))
        logger.info(f"probe {norm}: {out[f'{label} {norm}']}")
    return out


def add_source_args(p):
    """The arguments this script and ``hybrid_knowledge.py`` share: the dataset, the source store, cache, probe k."""
    p.add_argument("--dataset", default="amazon-art-office")
    p.add_argument("--data_path", default=os.path.join(ROOT, "dataset"))
    p.add_argument("--source", default=None, help="the LLM's store to start from (default: the dataset's default "
                   "store, built if missing)")
    p.add_argument("--cache", default=None, help="cache folder (default: the source store's cache)")
    p.add_argument("--k", type=int, default=20)


def open_source(args):
    """(spec, the checked source store, its DatasetFiles, the cache folder, the sparse profile) for parsed ``args``."""
    from recbole_llm4msr.knowledge.extract import build_knowledge, check_store
    from recbole_llm4msr.knowledge.spec import KnowledgeSpec

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    spec = KnowledgeSpec(dataset=args.dataset, data_path=args.data_path,
                         settings=dataset_settings(args.dataset, args.data_path))
    source = check_store(args.source or build_knowledge(spec)["cache"], spec)
    files = DatasetFiles.from_spec(spec)
    cache = args.cache or os.path.dirname(os.path.dirname(source.path))
    return spec, source, files, cache, sparse_profile(source, files)  # the profile once, for store and probe


def main(argv=None):
    from recbole_llm4msr.knowledge.extract import check_store

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_source_args(p)
    p.add_argument("--dim", type=int, default=None, help="default and only choice: the source store's width")
    p.add_argument("--reference", default="items+words", choices=REFERENCES,
                   help="which profile: item ids and every word of the item texts (the probe's; default), the ids "
                        "alone, the ids and the words of the item's categories, or the ids of the liked and of the "
                        "disliked items (items+dislikes, session 32)")
    args = p.parse_args(argv)
    spec, source, files, cache, sparse = open_source(args)
    if args.reference != "items+words":
        sparse = sparse_profile(source, files, args.reference)
    path, info = profile_store(source, files, args.dim or source.dim, cache, sparse=sparse, reference=args.reference)
    logger.info(f"profile store {path}: {info}")
    check_store(path, spec)  # a run will accept it
    result = {"svd": info, "probe_auc": probe(path, files, args.k, sparse), "store": path, "source": source.path}
    atomic_write_json(os.path.join(path, "profile-knowledge.json"), result, indent=2)
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
