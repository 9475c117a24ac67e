"""What a ranker that reads item *text* can reach on the alignment's ranking evaluation, and what it adds to
popularity (issue 16's HR@1 target: the aligned LLM above the base model and above popularity).

The evaluation is ``llm4msr-align``'s (:func:`recbole_llm4msr.align.evaluate.ranking_cases`, same seed, users and
negatives): the held-out validation item among itself and 19 items of its scenario the user has no positive for. The
LLM ranker sees titles and the user's history only, never how often an item was bought, while the popularity ranker
sees exactly that. This script asks how far text alone can go, with far more training than an alignment run gets:

* **text rankers** — logistic regression on the default knowledge's item vectors (MiniLM, the store the runs use;
  items the store lacks are encoded the same way): the candidate's vector, its product with the user's history mean
  and their cosine; trained on the **training split** (one case per user and scenario: a training positive after
  its history against ``--train_negatives`` items drawn as the evaluation draws them), with or without the
  candidate's training popularity (leave-one-out for the training positive, so it is counted as the evaluation
  counts it). Never fitted on the evaluation cases.
* **LLM rankers** (``--llm``, optional, slow: ~3 s per user on 2 CPU cores): each candidate's answer log-likelihood
  exactly as the align evaluation scores it (kept in ``--cache`` per model, resumable), alone and fused with log
  popularity by a logistic regression fitted on the other half of the cases (2-fold cross-fitting).

Every row is compared with popularity on the same cases (paired bootstrap, 95% interval).

    python benchmarks/align_ceiling.py --dataset amazon-art-office [--eval_users 500] [--llm smollm2[,DIR]]

Writes ``benchmarks/results/align-ceiling-<dataset>.json`` and ``.md``.
"""
import argparse
import hashlib
import json
import logging
import os
import random
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from recbole_llm4msr.align.cli import build_parser, dataset_files, sample_builder  # noqa: E402
from recbole_llm4msr.align.evaluate import (  # noqa: E402
    METRICS,
    _metrics,
    case_scores,
    paired_difference,
    popularity_counts,
    popularity_ranker,
    rank_of_first,
    ranking_cases,
)
from recbole_llm4msr.atomic import atomic_path, atomic_write_json, atomic_write_text  # noqa: E402

logger = logging.getLogger("align-ceiling")

FEATURES = {  # name -> the feature blocks it uses (see features())
    "text: candidate vector, its product with the history mean, cosine": ("vec", "prod", "cos"),
    "text: cosine to the history mean only": ("cos",),
    "popularity (log training count), refitted": ("pop",),
    "text + popularity": ("vec", "prod", "cos", "pop"),
    "cosine + popularity": ("cos", "pop"),
}


def item_vectors(files, data_path, dataset, items):
    """{item: unit vector} from the default knowledge store; items it lacks (no training positive) are encoded by
    the same encoder on the same text."""
    from recbole_llm4msr.knowledge.extract import build_knowledge
    from recbole_llm4msr.knowledge.files import dataset_settings
    from recbole_llm4msr.knowledge.llm import EncoderLLM
    from recbole_llm4msr.knowledge.spec import KnowledgeSpec
    from recbole_llm4msr.knowledge.store import KnowledgeStore

    spec = KnowledgeSpec(dataset=dataset, data_path=data_path, settings=dataset_settings(dataset, data_path))
    if spec.mode != "encoder" or spec.user_vector != "items":
        raise ValueError(f"the default knowledge is no longer item texts through a sentence encoder ({spec.llm}, "
                         f"{spec.mode}, {spec.user_vector}): update this benchmark")
    store = KnowledgeStore(build_knowledge(spec)["cache"])
    vectors = dict(zip((str(i) for i in store.ids("item")), np.asarray(store.vectors("item"), np.float32)))
    missing = sorted({str(i) for i in items} - set(vectors))
    if missing:
        texts = {str(k): v for k, v in files.item_texts().items()}
        logger.info(f"encoding {len(missing)} items the store lacks (no training positive) with {spec.llm}")
        encoder = EncoderLLM.load(spec.llm)
        encoded, _ = encoder.encode([texts.get(i) or f"item {i}" for i in missing])
        vectors.update(zip(missing, encoded))
    return {k: v / (np.linalg.norm(v) + 1e-12) for k, v in vectors.items()}, os.path.basename(store.path)


def features(vectors, counts, scen, history, candidates, leave_out=None, max_history=10):
    """{block: [candidates, d] array}: ``vec`` the candidate's vector, ``prod`` its product with the unit mean of the
    history's vectors, ``cos`` their cosine, ``pop`` log(1 + training count in the scenario), minus one for
    ``leave_out`` (a training positive counts itself)."""
    h = np.mean([vectors[str(i)] for i in history[-max_history:]], axis=0)
    h = h / (np.linalg.norm(h) + 1e-12)
    c = np.stack([vectors[str(i)] for i in candidates])
    pop = np.array([counts[scen][i] - (i == leave_out) for i in candidates], np.float32)
    return {"vec": c, "prod": c * h, "cos": (c @ h)[:, None], "pop": np.log1p(pop)[:, None]}


def training_cases(builder, negatives, seed):
    """One (user, scenario, history, [positive] + negatives) per user and scenario with two or more training positives:
    a random positive after the first, its history before it, negatives drawn as the evaluation draws them."""
    rng = random.Random(seed)
    out = []
    for user in builder.users:
        for scen, items in sorted(builder.positives[user].items()):
            pool = builder.pool.get(scen, [])
            if len(items) < 2 or len(pool) < negatives + len(builder.bought[user]):
                continue
            k = rng.randrange(1, len(items))
            negs = set()
            while len(negs) < negatives:
                item = rng.choice(pool)
                if item not in builder.bought[user]:
                    negs.add(item)
            out.append((user, scen, items[:k], [items[k]] + sorted(negs, key=str)))
    return out


def stack(rows, blocks):
    return np.vstack([np.hstack([r[b] for b in blocks]) for r in rows])


def ranks_of(score_rows):
    return [rank_of_first(s) for s in score_rows]


def summary(result, popularity):
    d = paired_difference(result, popularity)
    return {**{m: result[m] for m in METRICS}, "vs_popularity": {m: d[m] for m in METRICS}, "ranks": result["ranks"]}


def llm_scores(llm, builder, cases, cache_dir, max_length=384, scoring="mean", every=25):
    """[cases, candidates] answer log-likelihoods of ``llm`` (as ``llm4msr-align`` ranks), kept in ``cache_dir``
    (an .npz per model and set of cases, rewritten atomically every ``every`` cases: a stopped run resumes)."""
    from tqdm import tqdm

    from recbole_llm4msr.align.finetune import load_for_training
    from recbole_llm4msr.knowledge.fingerprint import text_digest
    from recbole_llm4msr.knowledge.llm import file_identity

    key = hashlib.sha1(json.dumps([str(file_identity(llm)), scoring, max_length, text_digest(
        [[builder.next_prompt(s, h)] + [str(c) for c in cands] for _, s, h, cands in cases])]).encode()).hexdigest()
    path = os.path.join(cache_dir, f"llm-scores-{key[:16]}.npz")
    done = np.load(path)["scores"].tolist() if os.path.isfile(path) else []
    if len(done) < len(cases):
        _, tokenizer, model = load_for_training(llm)
        model.eval()
        os.makedirs(cache_dir, exist_ok=True)
        for k in tqdm(range(len(done), len(cases)), desc=f"scoring ({os.path.basename(str(llm))})", unit="user",
                      initial=len(done), total=len(cases), mininterval=10):
            done.append(case_scores(model, tokenizer, builder, cases[k], max_length, scoring=scoring))
            if len(done) % every == 0 or len(done) == len(cases):
                with atomic_path(path, suffix=".npz") as tmp:
                    np.savez(tmp, scores=np.asarray(done, np.float64))
        del model
    return np.asarray(done, np.float64), path


def cross_fitted(blocks_per_case, blocks, folds=2, seed=0):
    """Scores of a logistic regression on ``blocks``, each case scored by the model fitted on the other folds."""
    from sklearn.linear_model import LogisticRegression

    n = len(blocks_per_case)
    fold = np.random.default_rng(seed).permutation(n) % folds
    scores = [None] * n
    for f in range(folds):
        train = [blocks_per_case[i] for i in range(n) if fold[i] != f]
        X = stack(train, blocks)
        clf = LogisticRegression(max_iter=2000).fit(X, np.concatenate([[1] + [0] * (len(r["pop"]) - 1) for r in train]))
        for i in np.flatnonzero(fold == f):
            scores[i] = clf.decision_function(np.hstack([blocks_per_case[i][b] for b in blocks]))
    return scores


def main(argv=None):
    from sklearn.linear_model import LogisticRegression

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="amazon-art-office")
    p.add_argument("--data_path", default=os.path.join(ROOT, "dataset"))
    p.add_argument("--eval_users", type=int, default=500)
    p.add_argument("--negatives", type=int, default=19, help="evaluation negatives (the align evaluation's)")
    p.add_argument("--train_negatives", type=int, default=4)
    p.add_argument("--seed", type=int, default=0, help="the align evaluation's seed (its cases)")
    p.add_argument("--curve", type=lambda v: [int(x) for x in v.split(",") if x], default=[250, 1000, 4000],
                   help="also fit the text ranker on this many training cases (a learning curve)")
    p.add_argument("--llm", default="", help="comma-separated LLMs to score the cases with (smollm2, a directory); "
                                             "each after the first is also compared with the first")
    p.add_argument("--cache", default=os.path.join(os.path.expanduser("~"), ".cache", "recbole_llm4msr",
                                                   "align-ceiling"))
    p.add_argument("--results", default=os.path.join(ROOT, "benchmarks", "results"))
    p.add_argument("--name", default=None, help="result file name without extension (default align-ceiling-<dataset>)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    start = time.perf_counter()
    align_args = build_parser().parse_args([f"--dataset={args.dataset}", f"--data_path={args.data_path}",
                                            "--out=unused", f"--seed={args.seed}"])
    files = dataset_files(align_args)
    builder = sample_builder(align_args, files)
    cases = ranking_cases(builder, files, args.eval_users, args.negatives, args.seed)
    counts = popularity_counts(builder)
    train = training_cases(builder, args.train_negatives, args.seed + 1)
    needed = {i for _, _, h, c in cases for i in h + c} | {i for _, _, h, c in train for i in h + c}
    vectors, store = item_vectors(files, args.data_path, args.dataset, needed)
    logger.info(f"{len(cases)} evaluation cases, {len(train)} training cases ({args.train_negatives} negatives each)")
    popularity = popularity_ranker(builder, cases)
    ev = [features(vectors, counts, s, h, c) for _, s, h, c in cases]
    tr = [features(vectors, counts, s, h, c, leave_out=c[0]) for _, s, h, c in train]
    rows = {"popularity (the align evaluation's ranker)": summary(popularity, popularity)}

    def fitted_ranking(train_rows, blocks):
        """A logistic regression on ``blocks`` of ``train_rows`` (positive first in each), ranking ``ev``."""
        clf = LogisticRegression(max_iter=2000).fit(stack(train_rows, blocks), np.concatenate(
            [[1] + [0] * (len(r["pop"]) - 1) for r in train_rows]))
        jitter = np.random.default_rng(0)  # ties broken at random, not in the held-out item's favour
        scores = [clf.decision_function(np.hstack([r[b] for b in blocks])) + 1e-9 * jitter.random(len(r["pop"]))
                  for r in ev]
        return summary(_metrics(ranks_of(scores)), popularity)

    for name, blocks in FEATURES.items():
        rows[name] = fitted_ranking(tr, blocks)
        logger.info(f"{name}: HR@1 {rows[name]['HR@1']}")
    # how much training the best text ranker needs: an alignment run on 2 CPU cores sees a few hundred samples
    order = np.random.default_rng(args.seed).permutation(len(tr))
    for n in [n for n in args.curve if n < len(tr)]:
        rows[f"text (as above), fitted on {n} training cases only"] = fitted_ranking(
            [tr[i] for i in order[:n]], FEATURES["text: candidate vector, its product with the history mean, cosine"])
    first_llm = None
    for llm in [x for x in args.llm.split(",") if x]:
        scores, path = llm_scores(llm, builder, cases, args.cache)
        label = llm
        if os.path.sep in llm:  # a directory: its name, or its run's name for llm4msr-align's <out>/model
            path = os.path.normpath(llm)
            label = os.path.basename(os.path.dirname(path) if os.path.basename(path) == "model" else path)
        ranked = _metrics(ranks_of(scores))
        row = rows[f"LLM {label}: answer log-likelihood (the align ranker)"] = summary(ranked, popularity)
        if first_llm is None:
            first_llm = (label, ranked)
        else:  # e.g. an aligned model against the base model, paired on the same cases
            d = paired_difference(ranked, first_llm[1])
            row["vs_first_llm"] = {"llm": first_llm[0], **{m: d[m] for m in METRICS}}
        with_llm = [dict(r, llm=s[:, None]) for r, s in zip(ev, scores)]
        for extra, blocks in (("+ popularity", ("llm", "pop")), ("+ cosine + popularity", ("llm", "cos", "pop"))):
            fused = cross_fitted(with_llm, blocks)
            rows[f"LLM {label} {extra} (2-fold cross-fitted on the cases)"] = summary(
                _metrics(ranks_of(fused)), popularity)
        logger.info(f"{llm}: scores in {path}")
    result = {"dataset": args.dataset, "cases": len(cases), "candidates": 1 + args.negatives, "seed": args.seed,
              "training_cases": len(train), "train_negatives": args.train_negatives, "store": store,
              "cpus": os.cpu_count(), "seconds": round(time.perf_counter() - start, 1), "rows": rows}
    os.makedirs(args.results, exist_ok=True)
    stem = args.name or f"align-ceiling-{args.dataset}"
    atomic_write_json(os.path.join(args.results, f"{stem}.json"), result, indent=1)
    atomic_write_text(os.path.join(args.results, f"{stem}.md"), table(result))
    print(table(result))


def table(result):
    lines = [f"# What text can rank on {result['dataset']}: the alignment's evaluation, rankers with and without "
             f"popularity", "",
             f"`python benchmarks/align_ceiling.py` — {result['cases']} validation cases of `llm4msr-align`'s "
             f"evaluation (seed {result['seed']}: the held-out item among {result['candidates']} candidates of its "
             f"scenario); text rankers fitted on {result['training_cases']} training cases ({result['train_negatives']}"
             f" negatives each) with the default store's item vectors ({result['store']}); {result['cpus']} CPU "
             f"cores, {result['seconds']} s. Differences: paired bootstrap over the cases, 95% interval.", "",
             "| ranker | HR@1 | HR@5 | NDCG@5 | HR@1 vs popularity | NDCG@5 vs popularity |",
             "|---|---|---|---|---|---|"]
    for name, r in result["rows"].items():
        d = r["vs_popularity"]
        cell = [f"{d[m]['difference']:+.3f} [{d[m]['low']:+.3f}, {d[m]['high']:+.3f}]" for m in ("HR@1", "NDCG@5")]
        lines.append(f"| {name} | {r['HR@1']:.3f} | {r['HR@5']:.3f} | {r['NDCG@5']:.3f} | {cell[0]} | {cell[1]} |")
    for name, r in result["rows"].items():
        if "vs_first_llm" in r:
            d = r["vs_first_llm"]
            lines.append("\n" + f"{name} minus {d['llm']} (paired): " + "; ".join(
                f"{m} {d[m]['difference']:+.3f} [{d[m]['low']:+.3f}, {d[m]['high']:+.3f}] (p {d[m]['p']})"
                for m in METRICS))
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
