"""Does knowledge from a model aligned with ``--candidate_popularity=words`` beat the base model's once the knowledge
item texts carry the same popularity words? (issue 16's knowledge target, the knowledge-side twin of the words.)

    python benchmarks/align_knowledge_words.py --aligned DIR/model [--dataset amazon-art-office] [--result FILE]

The ``user_vector: items`` recipe (each item's text in the item template, mean-pooled last-layer states; a user the
mean of the vectors of the user's training positives), with every item text written as the aligned model saw its
candidates: "<text> (<popularity words>)" — how many customers bought it in its scenario in the training split, at
the scenario's cuts (:class:`recbole_llm4msr.align.samples.SampleBuilder`; the item's scenario is the one where most
customers bought it). Both models (the base ``smollm2`` and ``--aligned``) encode the same texts into item stores
under ``--cache`` (resumable, fingerprinted by the texts); then the neighbour probe of both user-vector sets on the
validation rows, raw and whitened / standardised as a run sees them, with the paired bootstrap of ``aligned - base``
and of each against the no-LLM profile (``--resamples``; two-sided bootstrap p-values, Benjamini-Hochberg over the
aligned - base tests, ``p_bh``). With ``--plain_stores ALIGNED_STORE BASE_STORE`` (the ``items`` stores of
``llm4msr-align --probe_knowledge=items``, without the words) the words' own effect is measured on the same rows.
Reads the training and validation splits only. Writes ``--result`` (JSON).
"""
import argparse
import json
import logging
import os
import sys
import time
from collections import Counter

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from recbole_llm4msr.align.samples import SampleBuilder  # noqa: E402
from recbole_llm4msr.atomic import atomic_write_json  # noqa: E402
from recbole_llm4msr.compare import corrected  # noqa: E402
from recbole_llm4msr.knowledge import store as kstore  # noqa: E402
from recbole_llm4msr.knowledge.extract import plan, user_means  # noqa: E402
from recbole_llm4msr.knowledge.files import DatasetFiles, dataset_settings  # noqa: E402
from recbole_llm4msr.knowledge.items import build_item_store  # noqa: E402
from recbole_llm4msr.knowledge.llm import KnowledgeLLM  # noqa: E402
from recbole_llm4msr.knowledge.loader import apply_transform, population_transform  # noqa: E402
from recbole_llm4msr.knowledge.report import auc, auc_difference, neighbour_scores, profile_vectors  # noqa: E402
from recbole_llm4msr.knowledge.spec import KnowledgeSpec  # noqa: E402

logger = logging.getLogger("align_knowledge_words")
NORMS = ("none", "standardize", "whiten")


def item_scenarios(builder):
    """item -> the scenario where most customers bought it (training split; ties: the scenario's name)."""
    best = {}
    for scen in sorted(builder.buyers, key=str):
        for item, buyers in builder.buyers[scen].items():
            if item not in best or len(buyers) > best[item][0]:
                best[item] = (len(buyers), scen)
    return {i: s for i, (_, s) in best.items()}


def item_words(items, builder):
    """item -> its popularity words in the scenario where most customers bought it."""
    scen = item_scenarios(builder)
    missing = [i for i in items if i not in scen]
    if missing:
        raise ValueError(f"{len(missing)} item(s) have no training buyer (e.g. {missing[:3]}): the items recipe only "
                         f"encodes training positives, so the dataset's splits disagree")
    return {i: builder.popularity_words(i, scen[i]) for i in items}


def worded_texts(items, texts, words):
    """``texts`` with each item's popularity words (:func:`item_words`) appended, as the aligned model's candidates
    are written."""
    return {i: f"{texts.get(i) or f'item {i}'} ({words[i]})" for i in items}


def user_vectors(path, users, positives, dataset):
    """The users of a store in ``users``' order: its user vectors, or for an item store (the ``items`` recipe) the
    means of each user's training positives (:func:`recbole_llm4msr.knowledge.extract.user_means`)."""
    store = kstore.KnowledgeStore(path).require_dataset(dataset)
    if "user" not in store.kinds:
        return user_means(users, positives, store.ids("item"), store.vectors("item"))[0]
    where = {u: n for n, u in enumerate(store.ids("user"))}
    lost = [u for u in users if u not in where]
    if lost:
        raise ValueError(f"{path} lacks {len(lost)} user(s) (e.g. {lost[:3]}): not a store of this split")
    return np.asarray(store.vectors("user"), np.float32)[[where[u] for u in users]]


def normalise(x, norm):
    """``x`` as a run with ``knowledge_norm: norm`` sees it (the loader's statistics, of these users)."""
    return x if norm == "none" else apply_transform(x, population_transform(x, norm))


def probe_data(dataset, data_path, base, k):
    """What the neighbour probe of ``items`` knowledge needs on ``dataset``: its users (the pipeline's order), items
    and training positives, the training interactions, the validation rows of those users (labels ``y``, ``groups``)
    and the no-LLM profile's probe scores on them. Reads the training and validation splits only."""
    spec = KnowledgeSpec(dataset=dataset, data_path=data_path, settings=dataset_settings(dataset, data_path), llm=base,
                         user_vector="items")
    files = DatasetFiles.from_spec(spec)
    kplan = plan(spec)
    users = kplan.users(spec)
    train = files.train_interactions()
    valid = files.split_interactions("valid")
    rows = valid[valid["user"].isin(set(users))].reset_index(drop=True)
    profile = neighbour_scores(users, profile_vectors(users, train, kplan.builder.item_text), train, rows, k)
    return {"files": files, "plan": kplan, "users": users, "items": kplan.items(users),
            "positives": kplan.builder.user_positive_items(), "train": train, "rows": rows,
            "y": rows["label"].to_numpy(), "groups": rows["user"].to_numpy(), "profile": profile}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--aligned", required=True, help="the aligned model directory (llm4msr-align's OUT/model)")
    p.add_argument("--base", default="smollm2")
    p.add_argument("--dataset", default="amazon-art-office")
    p.add_argument("--data_path", default=os.path.join(ROOT, "dataset"))
    p.add_argument("--cache", default=os.path.join(ROOT, "saved", "align-knowledge-words"))
    p.add_argument("--plain_stores", nargs=2, default=None, metavar=("ALIGNED_STORE", "BASE_STORE"))
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples of every AUC difference")
    p.add_argument("--result", default=None)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    # what can be wrong with the inputs is checked before the two LLMs load and encode every item (minutes)
    if not os.path.isdir(args.aligned):
        raise SystemExit(f"--aligned {args.aligned}: no such model directory (llm4msr-align writes OUT/model)")
    for path in args.plain_stores or ():
        try:
            kstore.KnowledgeStore(path).require_dataset(args.dataset)
        except (kstore.StoreError, OSError) as exc:
            raise SystemExit(f"--plain_stores {path}: {exc}") from None
    manifest_path = os.path.join(args.aligned, "manifest.json")
    manifest = json.load(open(manifest_path)) if os.path.isfile(manifest_path) else {}
    if manifest.get("sample_settings", {}).get("candidate_popularity") != "words":
        logger.warning(f"{args.aligned} was not aligned with --candidate_popularity=words (its manifest says "
                       f"{manifest.get('sample_settings', {}).get('candidate_popularity', 'nothing')})")
    data = probe_data(args.dataset, args.data_path, args.base, args.k)
    files, kplan, users, items, positives = (data[n] for n in ("files", "plan", "users", "items", "positives"))
    train, rows, y, groups, profile = (data[n] for n in ("train", "rows", "y", "groups", "profile"))
    words = item_words(items, SampleBuilder(files, candidate_popularity="words", max_history=3))
    texts = worded_texts(items, kplan.builder.item_text, words)
    levels = dict(sorted(Counter(words.values()).items()))
    logger.info(f"{len(items)} items, {len(users)} users; popularity words over the items: {levels}")

    vectors, stores = {}, {}
    for key, llm_path in (("aligned", args.aligned), ("base", args.base)):
        start = time.perf_counter()
        llm = KnowledgeLLM.load(llm_path)
        path = build_item_store(args.dataset, items, texts, llm, args.cache, pooling="mean")
        del llm
        vectors[f"{key}+words"] = user_vectors(path, users, positives, args.dataset)
        stores[f"{key}+words"] = {"store": path, "seconds": round(time.perf_counter() - start, 1)}
    if args.plain_stores:
        for key, path in zip(("aligned", "base"), args.plain_stores):
            vectors[key] = user_vectors(path, users, positives, args.dataset)
            stores[key] = {"store": path}

    out = {"dataset": args.dataset, "aligned": args.aligned, "base": args.base, "users": len(users),
           "items": len(items), "rows": int(len(rows)), "k": args.k, "word_counts": levels, "stores": stores,
           "profile_auc": auc(y, profile), "by_norm": {}}
    pairs = [("aligned+words", "base+words")]
    if args.plain_stores:
        pairs += [("aligned", "base"), ("aligned+words", "aligned"), ("base+words", "base")]
    for norm in NORMS:
        scores = {k: neighbour_scores(users, normalise(v, norm), train, rows, args.k) for k, v in vectors.items()}
        res = {"auc": {k: auc(y, s) for k, s in scores.items()},
               "minus_profile": {k: auc_difference(y, s, profile, groups, args.resamples) for k, s in scores.items()},
               "differences": {f"{a} - {b}": auc_difference(y, scores[a], scores[b], groups, args.resamples)
                               for a, b in pairs}}
        out["by_norm"][norm] = res
        logger.info(f"{norm}: {json.dumps(res['auc'])}; {json.dumps(res['differences'])}")
    # the question asked (aligned above base), every way it was asked: each text variant x normalisation
    asked = [(norm, name) for norm in NORMS for name in out["by_norm"][norm]["differences"]
             if name.split(" - ")[0].startswith("aligned") and name.split(" - ")[1].startswith("base")]
    adjusted = corrected([out["by_norm"][n]["differences"][name]["p"] for n, name in asked])
    for (norm, name), p_bh in zip(asked, adjusted):
        out["by_norm"][norm]["differences"][name]["p_bh"] = round(p_bh, 4)
    out["correction"] = f"Benjamini-Hochberg over the {len(asked)} aligned - base tests (p_bh)"
    result = args.result or os.path.join(os.path.dirname(os.path.abspath(args.aligned)), "knowledge-words.json")
    atomic_write_json(result, out, indent=2)
    logger.info(f"wrote {result}")
    return out


if __name__ == "__main__":
    main()
