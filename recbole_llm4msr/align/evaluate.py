"""The LLM as a ranker, on the validation split (never the test split).

For each of the first ``users`` users (sorted, seeded) with a validation positive: the held-out item and
``negatives`` items of the same scenario that the user has no training or validation positive for. The prompt is
the user's training history in that scenario ("In the office scenario the user bought, in this order: A; B. What
did the user buy next?", as the ``next`` task writes it); each candidate is scored by the model's log-likelihood of
its text as the answer (no generation): ``scoring: mean`` (the default) per token, so long texts do not lose by
length; ``sum`` the whole answer's log-probability, what fine-tuning on the ``next`` task maximises. HR@1, HR@5 and
NDCG@5 of the held-out item, for any model and for a popularity ranker (training positive counts in the scenario).
Each result keeps its per-case ranks, so two rankers on the same cases compare with a paired bootstrap interval
(:func:`paired_difference`): with a few hundred cases HR@1 moves by several points between samples of users.
"""
import random
from collections import Counter, defaultdict

import numpy as np

from recbole_llm4msr.align.finetune import encode_candidates, listwise_scores


def ranking_cases(builder, files, users=200, negatives=19, seed=0):
    """[(user, scenario, history items, candidates (held-out first))] from the validation split."""
    rng = random.Random(seed)
    valid = files.split_interactions("valid")
    valid_pos = valid[valid["label"] > 0.5]
    held, seen = defaultdict(list), defaultdict(set)
    for u, i, s in zip(valid_pos["user"], valid_pos["item"], valid_pos["scenario"]):
        held[u].append((s, i))
        seen[u].add(i)
    candidates_users = sorted((u for u in held if u in builder.positives), key=str)
    rng.shuffle(candidates_users)
    cases = []
    for user in candidates_users:
        if len(cases) >= users:
            break
        scen, item = held[user][0]
        history = builder.positives[user].get(scen, [])
        if not history:
            continue
        banned = builder.bought.get(user, set()) | seen[user]
        pool = [i for i in builder.pool.get(scen, []) if i not in banned]
        if len(pool) < negatives:
            continue
        cases.append((user, scen, history, [item] + rng.sample(pool, negatives)))
    return cases


METRICS = ("HR@1", "HR@5", "NDCG@5")


def _per_case(ranks):
    """{metric: [cases] array}: each case's HR@1, HR@5 and NDCG@5 from the 0-based rank of its held-out item."""
    ranks = np.asarray(ranks)
    return {"HR@1": (ranks == 0).astype(float), "HR@5": (ranks < 5).astype(float),
            "NDCG@5": np.where(ranks < 5, 1 / np.log2(ranks + 2.0), 0.0)}


def _metrics(ranks):
    per = _per_case(ranks)
    return {"cases": int(len(ranks)), **{m: round(float(per[m].mean()), 4) for m in METRICS},
            "ranks": [int(r) for r in ranks]}


def paired_difference(a, b, resamples=1000, seed=0):
    """Ranker ``a`` minus ranker ``b`` (two results of :func:`llm_ranker` / :func:`popularity_ranker` on the same
    cases): per metric the difference of the means with a paired bootstrap 95% interval (cases resampled together)
    and a two-sided bootstrap p-value (twice the smaller share of resampled differences on either side of 0)."""
    ra, rb = a.get("ranks"), b.get("ranks")
    if ra is None or rb is None or len(ra) != len(rb) or not ra:
        raise ValueError("paired_difference needs two rankings of the same cases with their per-case ranks "
                         f"(got {None if ra is None else len(ra)} and {None if rb is None else len(rb)} ranks)")
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(ra), size=(resamples, len(ra)))
    pa, pb = _per_case(ra), _per_case(rb)
    out = {"cases": len(ra), "resamples": int(resamples)}
    for m in METRICS:
        d = pa[m] - pb[m]
        boot = d[pick].mean(axis=1)
        p = min(1.0, 2 * min(float((boot <= 0).mean()), float((boot >= 0).mean())))
        out[m] = {"difference": round(float(d.mean()), 4), "low": round(float(np.quantile(boot, 0.025)), 4),
                  "high": round(float(np.quantile(boot, 0.975)), 4), "p": round(p, 4)}
    return out


def differences(evaluation, resamples=1000, seed=0):
    """``{"aligned - base": ..., "aligned - popularity": ...}`` (and ``"aligned - popularity_words"`` where the
    evaluation has that ranker) for an evaluation holding those rankers' results."""
    return {f"aligned - {other}": paired_difference(evaluation["aligned"], evaluation[other], resamples, seed)
            for other in ("base", "popularity", "popularity_words") if other in evaluation and "aligned" in evaluation}


def rank_of_first(scores):
    """0-based rank of candidate 0 (ties count against it)."""
    scores = np.asarray(scores)
    return int((scores[1:] >= scores[0]).sum())


SCORINGS = ("mean", "sum")


def llm_ranker(model, tokenizer, builder, cases, max_length=384, batch_size=20, progress=True, desc="ranking",
               scoring="mean"):
    """Ranks of the held-out items by each candidate's answer log-likelihood (:func:`answer_scores`)."""
    from tqdm import tqdm

    model.eval()
    return _metrics([rank_of_first(case_scores(model, tokenizer, builder, case, max_length, batch_size, scoring))
                     for case in tqdm(cases, desc=desc, unit="user", disable=not progress)])


def case_scores(model, tokenizer, builder, case, max_length=384, batch_size=20, scoring="mean"):
    """The :func:`answer_scores` of one :func:`ranking_cases` case: its candidates after its history's question."""
    user, scen, history, candidates = case
    return answer_scores(model, tokenizer, builder.next_prompt(scen, history),
                         [builder.candidate_text(c, scen, user) for c in candidates],
                         max_length, batch_size, scoring)


def answer_scores(model, tokenizer, prompt, answers, max_length=384, batch_size=20, scoring="mean"):
    """Log-likelihood of each answer (+ EOS) after ``prompt``, per token (``scoring: mean``) or in all (``sum``).
    The prompt is rendered as in fine-tuning; a long prompt is cut once, to fit with the longest answer, so every
    candidate sees the same context. Each group of ``batch_size`` candidates runs the prompt once and shares its KV
    cache (every transformers model; a model whose cache cannot be repeated runs each candidate whole): the very
    function the ``listwise`` task trains (:func:`~recbole_llm4msr.align.finetune.listwise_scores`)."""
    import torch

    if scoring not in SCORINGS:
        raise ValueError(f"scoring must be one of {', '.join(SCORINGS)}, not '{scoring}'")
    pairs = encode_candidates(tokenizer, prompt, answers, max_length)  # one context for every candidate
    with torch.inference_mode():
        return [float(x) for k in range(0, len(pairs), batch_size)
                for x in listwise_scores(model, tokenizer, pairs[k:k + batch_size], scoring)]


def popularity_counts(builder):
    """{scenario: Counter(item: training positives)}: what the popularity ranker ranks by."""
    counts = defaultdict(Counter)
    for per in builder.positives.values():
        for scen, items in per.items():
            counts[scen].update(items)
    return counts


def popularity_ranker(builder, cases):
    counts = popularity_counts(builder)
    rng = random.Random(0)
    # ties (items never bought in training) are broken at random, not in the held-out item's favour
    return _metrics([rank_of_first([counts[s][c] + rng.random() * 1e-3 for c in cands]) for _, s, _, cands in cases])


def popularity_words_ranker(builder, cases):
    """Ranks by the candidates' popularity words alone (``candidate_popularity: words``: the 8 levels a ranking LLM
    reads beside each title), ties broken at random: what the words give without the history or the titles."""
    rng = random.Random(0)
    return _metrics([rank_of_first([builder.popularity_level(c, s, u) + rng.random() * 1e-3 for c in cands])
                     for u, s, _, cands in cases])
