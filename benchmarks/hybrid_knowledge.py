"""Does the LLM add anything beyond the bag of items? A hybrid knowledge store and its LLM-half control.

Session 24's positive control (``benchmarks/profile_knowledge.py``) showed that LLM4MSR, given the no-LLM profile as
its knowledge, beats its plain backbone, its shuffled control and LLM4MSR with the LLM's knowledge on amazon-art-office.
What is left is whether the LLM's vectors add anything *on top of* the profile. This writes two stores:

* **hybrid**: a user's vector is ``[LLM block | profile block]``. The LLM block is the source store's user vectors as a
  run sees them under ``--llm_norm`` (``whiten`` by default: the better one on amazon-art-office's probe); the profile
  block is the profile store's SVD vectors (built by ``profile_knowledge.profile_store`` when missing). Each block is
  centred and scaled to unit mean norm, so neither dominates by scale. Scenario vectors: the source's, zero-padded.
  ``--block_dim D`` first reduces each block to its D principal components (D = half the source's width gives a
  hybrid as wide as the profile alone, so that "hybrid vs profile alone" does not also compare widths).
* **hybrid, LLM half shuffled** (the control): the same, with the LLM block moved to other users along one seeded
  cycle (nobody keeps their own; the set of vectors is unchanged) while the profile block stays with its user. Same
  width, same vectors, same profile: only the link between a user and the LLM's view of that user is cut.

``llm4msr-compare ... --set knowledge_store=PATH`` on each (the verdict harness, ``benchmarks/compare_amazon.sh``)
then asks the question; ``benchmarks/cross_compare.py`` pairs the two folders' rows (paired seeds, corrected p).

    python benchmarks/hybrid_knowledge.py --dataset amazon-art-office [--source STORE] [--llm_norm whiten]

Prints both store paths and writes ``hybrid-knowledge.json`` in each: how it was made and the neighbour probe of its
vectors beside the sparse profile's. Reads the training and validation splits only; runs use ``knowledge_norm: none``
(the blocks are normalised already): name it (``--set knowledge_norm=none``; ``compare_amazon.sh`` does), since the
default ``auto`` would let the probe choose again.
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

from benchmarks.profile_knowledge import add_source_args, open_source, probe, profile_store, write_store  # noqa: E402
from recbole_llm4msr.atomic import atomic_write_json  # noqa: E402
from recbole_llm4msr.knowledge import store as kstore  # noqa: E402
from recbole_llm4msr.knowledge.fingerprint import changed_parts, store_key, text_digest  # noqa: E402
from recbole_llm4msr.knowledge.loader import NORMS, apply_transform, derangement, normalization  # noqa: E402

logger = logging.getLogger("hybrid_knowledge")
INFO = "hybrid-knowledge.json"


def unit_block(x):
    """``x`` centred, scaled so that its rows' mean squared norm is 1 (float32)."""
    x = np.asarray(x, dtype=np.float64)
    x = x - x.mean(0)
    scale = np.sqrt((x ** 2).sum(1).mean())
    if scale == 0:
        raise ValueError("a knowledge block is the same vector for every user: nothing to combine")
    return (x / scale).astype(np.float32)


def reduce_block(x, dim, seed=0):
    """``x`` projected on its first ``dim`` principal components (scikit-learn's PCA), then :func:`unit_block`;
    ``dim`` None: ``x`` unchanged. For a hybrid as wide as each source (``--block_dim`` = half the width)."""
    if dim is None:
        return x
    from sklearn.decomposition import PCA

    if not 0 < dim < min(x.shape):
        raise ValueError(f"--block_dim {dim} must be between 1 and {min(x.shape) - 1} (a block's width and users)")
    return unit_block(PCA(dim, random_state=seed).fit_transform(x))


def hybrid_store(source, profile, cache_dir, llm_norm="whiten", shuffle_seed=None, block_dim=None):
    """Write (or find) the hybrid store of ``source`` (the LLM's store) and ``profile`` (its profile store); with
    ``shuffle_seed`` the LLM block is deranged across users; with ``block_dim`` each block is reduced to that many
    principal components first. Returns (path, info)."""
    if llm_norm not in NORMS:
        raise ValueError(f"--llm_norm must be one of {', '.join(NORMS)}, not '{llm_norm}'")
    users = list(source.ids("user"))
    if list(profile.ids("user")) != users:
        raise ValueError(f"the profile store {profile.path} does not hold the users of {source.path} in the same "
                         "order; build it from this source (benchmarks/profile_knowledge.py --source SOURCE)")
    changed = changed_parts(profile.fingerprint, source.fingerprint)
    if changed:
        raise ValueError(f"the profile store {profile.path} was built on other data than {source.path} "
                         f"({', '.join(changed)} differ); rebuild it with benchmarks/profile_knowledge.py "
                         "--source SOURCE")
    recipe = {"hybrid": [source.fingerprint["llm"], llm_norm, profile.fingerprint["llm"]],
              "llm_shuffle_seed": shuffle_seed, **({} if block_dim is None else {"block_dim": block_dim})}
    fingerprint = dict(source.fingerprint, llm=text_digest(recipe), mode="hybrid", pooling=None, dtype="float32")
    name = (f"hybrid-{llm_norm}-{source.header['model']}+profile" + ("" if block_dim is None else f"-pca{block_dim}")
            + ("" if shuffle_seed is None else "-llm-shuffled"))
    path = kstore.store_path(cache_dir, source.header["dataset"], name, "hybrid", store_key(fingerprint))
    if kstore.is_complete(path):
        return path, json.load(open(os.path.join(path, INFO)))["made"]
    start = time.perf_counter()
    llm = np.asarray(source.vectors("user"), dtype=np.float32)
    transform = normalization(source, "user", llm_norm)
    llm = reduce_block(unit_block(llm if transform is None else apply_transform(llm, transform)), block_dim)
    if shuffle_seed is not None:
        llm = llm[derangement(len(users), shuffle_seed)]
    vectors = np.concatenate([llm, reduce_block(unit_block(profile.vectors("user")), block_dim)], axis=1)
    scenarios = list(source.ids("scenario"))
    scen = np.asarray(source.vectors("scenario"), dtype=np.float32)
    width = vectors.shape[1]  # the scenario vectors zero-padded, or cut, to the users' width
    scen = np.concatenate([scen, np.zeros((len(scenarios), max(0, width - scen.shape[1])), np.float32)],
                          axis=1)[:, :width]
    write_store(path, source, scenarios, scen, users, vectors, model=name, mode="hybrid", user_vector="hybrid",
                llm=f"[{source.header['model']} ({llm_norm}) | no-LLM profile SVD]", fingerprint=fingerprint,
                hybrid_sources={"llm": source.path, "profile": profile.path})
    info = {"llm_store": source.path, "llm_norm": llm_norm, "profile_store": profile.path,
            "widths": [int(llm.shape[1]), int(vectors.shape[1] - llm.shape[1])], "llm_shuffle_seed": shuffle_seed,
            "block_dim": block_dim, "users": len(users), "seconds": round(time.perf_counter() - start, 1)}
    atomic_write_json(os.path.join(path, INFO), {"made": info}, indent=2)
    return path, info


def main(argv=None):
    from recbole_llm4msr.knowledge.extract import check_store

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_source_args(p)
    p.add_argument("--profile", default=None, help="its profile store (default: built from --source)")
    p.add_argument("--llm_norm", default="whiten", choices=NORMS)
    p.add_argument("--shuffle_seed", type=int, default=0, help="seed of the control's cycle")
    p.add_argument("--block_dim", type=int, default=None, help="reduce each block to this many principal components "
                   "(half the source's width: a hybrid as wide as the profile alone)")
    args = p.parse_args(argv)
    spec, source, files, cache, sparse = open_source(args)
    profile = args.profile or profile_store(source, files, source.dim, cache, sparse=sparse)[0]
    profile = check_store(profile, spec)
    out = {}
    for label, seed in (("hybrid", None), ("hybrid, LLM half shuffled", args.shuffle_seed)):
        path, info = hybrid_store(source, profile, cache, args.llm_norm, seed, args.block_dim)
        check_store(path, spec)  # a run will accept it
        aucs = probe(path, files, args.k, sparse, label="hybrid")
        atomic_write_json(os.path.join(path, INFO), {"made": info, "probe_auc": aucs, "store": path}, indent=2)
        logger.info(f"{label}: {path} {aucs}")
        out[label] = {"store": path, "made": info, "probe_auc": aucs}
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
