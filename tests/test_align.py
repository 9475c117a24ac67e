"""llm4msr-align: samples from the training split only, templates as documented, LoRA fine-tuning that learns and
resumes, the ranker, the saved model directory, and clear errors. Tiny random models (seconds)."""
import json
import os
import re

import numpy as np
import pandas as pd
import pytest
import torch

from dataset_converters import csv as csv_conv
from recbole_llm4msr.align.evaluate import llm_ranker, paired_difference, popularity_ranker, ranking_cases
from recbole_llm4msr.align.finetune import FinetuneError, LoraSettings, finetune, is_finished
from recbole_llm4msr.align.samples import MASK, POPULARITY_WORDS, SampleBuilder, SampleError
from recbole_llm4msr.knowledge.files import DatasetFiles
from tests.knowledge_helpers import make_spec, tiny_causal_lm, tiny_model_dir


@pytest.fixture(scope="module")
def files(data_dir):
    return DatasetFiles.from_spec(make_spec(data_dir))


@pytest.fixture(scope="module")
def builder(files):
    return SampleBuilder(files, seed=1)


def read(path):
    df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    df.columns = [c.split(":")[0] for c in df.columns]
    return df


def segments(prompt):
    """The items a prompt lists (split at the separators the templates use; titles are whole segments)."""
    parts = re.split(r": |; | \(\d+\) |\. (?=[A-Z])|\? ", prompt)
    return {p.rstrip(".?") for p in parts} | {p.rsplit(" buy ", 1)[-1].rstrip("?") for p in parts}


def test_samples_never_contain_held_out_items(files, builder):
    samples = builder.build(["mim", "bpr", "mlm", "next", "rank", "click", "listwise"], 1750)
    assert {s.task for s in samples} == {"mim", "bpr", "mlm", "next", "rank", "click", "listwise"}
    assert len(samples) == 1750
    texts = files.item_texts()
    unique = {t for t, n in pd.Series(list(texts.values())).value_counts().items() if n == 1}
    held = pd.concat([read(os.path.join(files.folder, f"ml-100k-msr.{p}.inter")) for p in ("valid", "test")])
    held_by_user = held.groupby("user_id")["item_id"].agg(set)
    train_by_user = files.train_interactions().groupby("user")["item"].agg(set)
    checked = 0
    for s in samples:
        for item in held_by_user.get(s.user, set()) - train_by_user.get(s.user, set()):
            if texts.get(item) in unique:
                assert texts[item] not in segments(s.prompt) and texts[item] != s.answer, (s.user, item, s.task)
                assert texts[item] not in s.negatives, (s.user, item, s.task)
                checked += 1
    assert checked > 1000
    assert all(not re.search(r"\buser \d", s.prompt) for s in samples)  # no user ids


def test_templates_render_as_documented(builder):
    b = builder
    mim = b.mim("13")
    assert mim.prompt.count(MASK) == 2 and mim.prompt.startswith(f"In the {mim.scenario} scenario the user bought")
    listed = mim.prompt.split("oldest first: ")[1].rsplit(". Which item", 1)[0].split("; ")
    history = [b.text(i) for i in b.positives["13"][mim.scenario][-b.max_history:]]
    assert [mim.answer if x == MASK else x for x in listed] == history
    bpr = b.bpr("13")
    first, second = re.search(r"\(1\) (.*) \(2\) (.*)$", bpr.prompt).groups()
    assert bpr.answer in (first, second)
    other = second if bpr.answer == first else first
    bought = {b.text(i) for i in b.positives["13"][bpr.scenario]}
    assert bpr.answer in bought and other not in bought
    nxt = b.next("13")
    seq = [b.text(i) for i in b.positives["13"][nxt.scenario]]
    shown = nxt.prompt.split("in this order: ")[1].rsplit(". What did", 1)[0].split("; ")
    assert seq[seq.index(shown[-1]) + 1] == nxt.answer
    rank = b.rank("13")
    order = [int(x) for x in rank.answer.split(", ")]
    assert sorted(order) == list(range(1, len(order) + 1))
    options = dict(re.findall(r"\((\d)\) (.*?)(?= \(\d\) |$)", rank.prompt))
    assert options[str(order[0])] in bought
    mlm = b.mlm("13")
    assert MASK in mlm.prompt and all(w for w in mlm.answer.split(", "))
    assert {b.click("13").answer for _ in range(30)} == {"yes", "no"}
    lw = b.listwise("13")
    shown = lw.prompt.split("in this order: ")[1].rsplit(". What did", 1)[0].split("; ")
    assert lw.prompt.endswith("What did the user buy next?") and seq[seq.index(shown[-1]) + 1] == lw.answer
    assert len(lw.negatives) == b.listwise_negatives == 4 and len(set(lw.negatives)) == 4
    assert not set(lw.negatives) & bought and lw.answer not in lw.negatives
    assert set(lw.negatives) <= {b.text(i) for i in b.negatives["13"][lw.scenario]}  # the user's own negatives only


def test_a_user_without_own_negatives_gets_no_sample_that_needs_one(files):
    b = SampleBuilder(files, seed=5)
    user = b.users[0]
    b.negatives[user] = {}  # no training negative in any scenario (the scenario's other items are not used)
    assert all(getattr(b, task)(user) is None for task in ("bpr", "rank", "listwise"))
    clicks = [b.click(user) for _ in range(20)]
    assert {c.answer for c in clicks if c is not None} == {"yes"} and None in clicks  # "no" needs a negative
    assert b.next(user) is not None and b.mim(user) is not None  # tasks without negatives are unaffected


def test_candidate_popularity_words_count_other_buyers_and_mark_candidates_only(files):
    from recbole_llm4msr.align.evaluate import case_scores
    from recbole_llm4msr.align.samples import POPULARITY_LAST, POPULARITY_LEVELS, POPULARITY_NONE

    plain = SampleBuilder(files, seed=3)
    b = SampleBuilder(files, seed=3, candidate_popularity="words")
    with pytest.raises(SampleError, match="candidate_popularity must be one of none, words, not 'counts'"):
        SampleBuilder(files, candidate_popularity="counts")
    train = files.train_interactions()
    pos = train[train["label"] > 0.5]
    buyers = pos.groupby(["scenario", "item"])["user"].agg(set)
    levels = [POPULARITY_NONE] + [w for _, w in POPULARITY_LEVELS] + [POPULARITY_LAST]
    for scen in b.popularity_cuts:
        counts = sorted(len(u) for (s, _), u in buyers.items() if s == scen)
        assert b.popularity_cuts[scen] == [counts[min(len(counts) - 1, int(q * len(counts)))]
                                           for q, _ in POPULARITY_LEVELS]
        assert b.popularity_cuts[scen] == sorted(b.popularity_cuts[scen])
    seen = set()
    for (scen, item), users in list(buyers.items())[::7]:
        user = sorted(users)[0]
        def level(n):
            return POPULARITY_NONE if n == 0 else next(
                (w for cut, (_, w) in zip(b.popularity_cuts[scen], POPULARITY_LEVELS) if n <= cut), POPULARITY_LAST)

        words = b.popularity_words(item, scen, user)
        assert words == level(len(users) - 1), (scen, item)  # the user's own purchase never counts
        assert b.popularity_words(item, scen, "nobody") == b.popularity_words(item, scen) == level(len(users))
        seen.add(words)
        assert b.candidate_text(item, scen, user) == f"{plain.text(item)} ({words})"
        assert plain.candidate_text(item, scen, user) == plain.text(item)
    assert len(seen) >= 5 and seen <= set(levels)
    # candidates carry the words, histories do not; same seed, same samples otherwise
    phrase = re.compile(r" \((?:" + "|".join(map(re.escape, levels)) + r")\)$")
    lw, lw0 = b.listwise("13"), plain.listwise("13")
    assert phrase.search(lw.answer) and all(phrase.search(n) for n in lw.negatives)
    assert phrase.sub("", lw.answer) == lw0.answer and lw.prompt == lw0.prompt and not phrase.search(lw.prompt[:-1])
    assert phrase.search(b.next("13").answer) and phrase.search(b.bpr("13").answer)
    click = b.click("13")
    assert re.search(r"\((?:" + "|".join(map(re.escape, levels)) + r")\)\? Answer yes or no\.$", click.prompt)
    mim = b.mim("13")
    assert not any(f"({w})" in mim.prompt + mim.answer for w in levels)
    # the ranker writes its candidates the same way (a held-out item: the user has not bought it in training)
    case = ranking_cases(b, files, users=3, negatives=4)[0]
    written = []

    def fake_scores(model, tokenizer, prompt, answers, *rest):
        written.extend(answers)
        return [0.0] * len(answers)

    import recbole_llm4msr.align.evaluate as ev
    original, ev.answer_scores = ev.answer_scores, fake_scores
    try:
        case_scores(None, None, b, case)
    finally:
        ev.answer_scores = original
    user, scen, _, cands = case
    assert written == [f"{plain.text(c)} ({b.popularity_words(c, scen)})" for c in cands]
    # the words-alone reference ranker: a held-out item worded above every negative ranks first, one below any does not
    from recbole_llm4msr.align.evaluate import popularity_words_ranker
    from recbole_llm4msr.align.samples import POPULARITY_WORDS

    assert POPULARITY_WORDS == tuple(levels)
    cases = ranking_cases(b, files, users=60, negatives=9)
    ranks = popularity_words_ranker(b, cases)["ranks"]
    for (u, s, _, cands), r in zip(cases, ranks):
        lv = [levels.index(b.popularity_words(c, s, u)) for c in cands]
        assert sum(x > lv[0] for x in lv[1:]) <= r <= sum(x >= lv[0] for x in lv[1:]), (lv, r)
    assert len(set(ranks)) > 3


# ---------------------------------------------------------------------------------------------- a toy pattern
@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """Users buy 'red' items and skip 'blue' ones: a pattern a tiny model can learn."""
    root = tmp_path_factory.mktemp("toy")
    rng = np.random.default_rng(0)
    rows, items = [], []
    reds, blues = [f"r{k}" for k in range(12)], [f"b{k}" for k in range(40)]
    items = [(i, f"red thing {i[1:]}") for i in reds] + [(i, f"blue thing {i[1:]}") for i in blues]
    for u in range(40):
        for k, i in enumerate(rng.choice(reds, 8, replace=False)):
            rows.append((f"u{u}", i, 1, "shop", k))
        for k, i in enumerate(rng.choice(blues, 8, replace=False)):
            rows.append((f"u{u}", i, 0, "shop", k))
        rows.append((f"u{u}", "r0" if u % 2 else "b0", 1 if u % 2 else 0, "other", 0))
    (root / "toy.csv").write_text("u,i,y,s,t\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n")
    (root / "items.csv").write_text("i,title\n" + "\n".join(f"{i},{t}" for i, t in items) + "\n")
    csv_conv.convert(str(root / "toy.csv"), str(root / "data"), "toy", "u", "i", "y", "s", item_file=str(root / "items.csv"),
                     order_col="t")
    return DatasetFiles.from_spec(make_spec(root / "data", dataset="toy"))


def test_loss_falls_and_the_ranker_learns_the_pattern(toy, tmp_path):
    builder = SampleBuilder(toy, seed=0)
    samples = builder.build(["next"], 160)
    cases = ranking_cases(builder, toy, users=30, negatives=9)
    assert len(cases) >= 10
    tokenizer, model = tiny_causal_lm(seed=0, initializer_range=0.5)  # a head that adapters can move (see helper)
    before = llm_ranker(model, tokenizer, builder, cases)
    settings = LoraSettings(lora_r=8, learning_rate=1e-2, batch_size=8, epochs=3, save_every=1000, lora_dropout=0.0)
    merged, history = finetune(model, tokenizer, [(s.prompt, s.answer) for s in samples], str(tmp_path), settings,
                               progress=False)
    after = llm_ranker(merged, tokenizer, builder, cases)
    losses = history["losses"]
    assert np.mean(losses[-10:]) < 0.7 * np.mean(losses[:10])
    assert after["HR@1"] > before["HR@1"] + 0.15, (before, after)
    pop = popularity_ranker(builder, cases)
    assert set(pop) == {"cases", "HR@1", "HR@5", "NDCG@5", "ranks"} and 0 <= pop["HR@5"] <= 1
    # the learned pattern is a paired difference whose interval lies above 0
    gain = paired_difference(after, before)["HR@1"]
    assert gain["difference"] == pytest.approx(after["HR@1"] - before["HR@1"], abs=1e-3)
    assert 0 < gain["low"] <= gain["difference"] <= gain["high"] and gain["p"] < 0.05


def test_listwise_training_scores_as_the_ranker_and_teaches_the_pattern(toy, tmp_path):
    import torch

    from recbole_llm4msr.align.evaluate import answer_scores
    from recbole_llm4msr.align.finetune import batch_loss, encode_candidates, encode_pair, listwise_scores, pad_batch

    builder = SampleBuilder(toy, seed=0, listwise_negatives=3)
    samples = builder.build(["listwise"], 120)
    assert len(samples) == 120 and all(1 <= len(s.negatives) <= 3 for s in samples)
    tokenizer, model = tiny_causal_lm(seed=0, initializer_range=0.5)
    s = samples[0]
    pairs = encode_candidates(tokenizer, s.prompt, [s.answer, *s.negatives], 384)
    for scoring in ("mean", "sum"):  # the training score is the ranker's score, with or without the shared prompt
        shared = listwise_scores(model, tokenizer, pairs, scoring)
        whole = listwise_scores(model, tokenizer, pairs, scoring, shared_prefix=False)
        ranker = answer_scores(model, tokenizer, s.prompt, [s.answer, *s.negatives], 384, scoring=scoring)
        assert torch.allclose(shared, whole, atol=1e-4) and np.allclose(shared.detach().numpy(), ranker, atol=1e-4)
    # a mixed batch: one forward over every sequence (DDP) == shared prompts, in loss and in gradients
    nxt = SampleBuilder(toy, seed=1).build(["next"], 2)
    batch = [("list", encode_candidates(tokenizer, x.prompt, [x.answer, *x.negatives], 384)) for x in samples[:3]]
    batch += [("lm", encode_pair(tokenizer, x.prompt, x.answer, 384)) for x in nxt]
    grads, losses = [], []
    for shared_prefix, backward in ((True, False), (False, False), (True, True)):
        model.zero_grad()
        loss = batch_loss(model, tokenizer, batch, "cpu", "mean", 0.5, shared_prefix, backward=backward)
        if not backward:
            loss.backward()
        losses.append(float(loss.detach()))
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    # (the third: each sample back-propagated as it is computed, gradients accumulated)
    assert losses[1] == pytest.approx(losses[0], rel=1e-4) and losses[2] == pytest.approx(losses[0], rel=1e-4)
    assert torch.allclose(grads[0], grads[1], atol=1e-5) and torch.allclose(grads[0], grads[2], atol=1e-5)
    manual = sum(torch.nn.functional.cross_entropy(listwise_scores(model, tokenizer, e, "mean") / 0.5,
                                                   torch.tensor(0)) for _, e in batch[:3])
    ids, labels, mask = pad_batch([e for _, e in batch[3:]], tokenizer, "cpu")
    lm_loss = model(input_ids=ids, labels=labels, attention_mask=mask).loss  # token mean of the two next samples
    assert losses[0] == pytest.approx(float(((manual + 2 * lm_loss) / 5).detach()), rel=1e-4)
    # training on the ranker's objective teaches the toy pattern (red items are bought)
    cases = ranking_cases(builder, toy, users=30, negatives=9)
    before = llm_ranker(model, tokenizer, builder, cases)
    settings = LoraSettings(lora_r=8, learning_rate=1e-2, batch_size=8, epochs=2, save_every=1000, lora_dropout=0.0)
    merged, history = finetune(model, tokenizer, [(x.prompt, x.answer, x.negatives) for x in samples], str(tmp_path),
                               settings, progress=False)
    after = llm_ranker(merged, tokenizer, builder, cases)
    assert np.mean(history["losses"][-5:]) < 0.7 * np.mean(history["losses"][:5])
    assert after["HR@1"] > before["HR@1"] + 0.15, (before, after)
    with pytest.raises(FinetuneError, match="temperature"):
        finetune(merged, tokenizer, [(x.prompt, x.answer, x.negatives) for x in samples], str(tmp_path / "t"),
                 settings, progress=False, temperature=0)


@pytest.fixture(scope="module")
def popular_toy(tmp_path_factory):
    """Titles say nothing (every item is 'thing k'); users buy the first items far more often than the rest."""
    root = tmp_path_factory.mktemp("popular")
    rng = np.random.default_rng(1)
    items = [f"t{k}" for k in range(60)]
    weights = np.r_[np.full(6, 20.0), np.ones(54)]
    rows = []
    for u in range(60):
        bought = rng.choice(items, 8, replace=False, p=weights / weights.sum())
        for k, i in enumerate(bought):
            rows.append((f"u{u}", i, 1, "shop", k))
        for k, i in enumerate(rng.choice([i for i in items if i not in bought], 8, replace=False)):
            rows.append((f"u{u}", i, 0, "shop", k))
    (root / "pop.csv").write_text("u,i,y,s,t\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n")
    (root / "items.csv").write_text("i,title\n" + "\n".join(f"{i},thing {i[1:]}" for i in items) + "\n")
    csv_conv.convert(str(root / "pop.csv"), str(root / "data"), "pop", "u", "i", "y", "s",
                     item_file=str(root / "items.csv"), order_col="t")
    return DatasetFiles.from_spec(make_spec(root / "data", dataset="pop"))


def test_a_model_trained_with_popularity_words_ranks_by_them(popular_toy, tmp_path):
    words = SampleBuilder(popular_toy, seed=0, listwise_negatives=3, candidate_popularity="words")
    plain = SampleBuilder(popular_toy, seed=0, listwise_negatives=3)
    samples = words.build(["listwise"], 96)
    cases = ranking_cases(words, popular_toy, users=40, negatives=9)
    assert len(cases) >= 20 and ranking_cases(plain, popular_toy, users=40, negatives=9) == cases
    tokenizer, model = tiny_causal_lm(seed=0, initializer_range=0.5)
    before = llm_ranker(model, tokenizer, words, cases, progress=False)
    settings = LoraSettings(lora_r=8, learning_rate=1e-2, batch_size=8, epochs=2, save_every=1000, lora_dropout=0.0)
    merged, _ = finetune(model, tokenizer, [(x.prompt, x.answer, x.negatives) for x in samples], str(tmp_path),
                         settings, progress=False)
    after = llm_ranker(merged, tokenizer, words, cases, progress=False)
    without = llm_ranker(merged, tokenizer, plain, cases, progress=False)  # the same model, titles only
    assert after["HR@1"] > before["HR@1"] + 0.15, (before, after)
    assert after["HR@1"] > without["HR@1"] + 0.1, (after, without)


def test_listwise_forward_batched_trains_as_shared_prefix_and_auto_picks_by_device(toy, tmp_path, monkeypatch):
    from recbole_llm4msr.align.finetune import listwise_forward_of

    samples = SampleBuilder(toy, seed=0, listwise_negatives=3).build(["listwise"], 24)
    triples = [(x.prompt, x.answer, x.negatives) for x in samples]
    settings = LoraSettings(lora_r=4, learning_rate=1e-2, batch_size=8, save_every=100, lora_dropout=0.0)
    runs = {}
    for how in ("shared_prefix", "batched"):
        tokenizer, model = tiny_causal_lm(seed=0, initializer_range=0.5)
        runs[how] = finetune(model, tokenizer, triples, str(tmp_path / how), settings, progress=False,
                             listwise_forward=how)
    assert runs["batched"][1]["losses"] == pytest.approx(runs["shared_prefix"][1]["losses"], rel=1e-3)
    assert runs["batched"][1]["losses"][0] != runs["batched"][1]["losses"][-1]
    for (n, a), (_, b) in zip(runs["batched"][0].state_dict().items(), runs["shared_prefix"][0].state_dict().items()):
        assert torch.allclose(a, b, atol=1e-4), n
    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    import recbole_llm4msr.align.finetune as ft

    real = ft.batch_loss
    monkeypatch.setattr("recbole_llm4msr.align.finetune.batch_loss", out_of_memory)
    with pytest.raises(FinetuneError, match=r"out of memory on cpu in training step 1 of 3 \(listwise_forward="
                                            r"batched.*pass --listwise_forward=shared_prefix"):
        finetune(tiny_causal_lm()[1], tiny_causal_lm()[0], triples, str(tmp_path / "oom"), settings,
                 progress=False, listwise_forward="batched")
    # auto (here made to choose batched, as on a GPU): an out-of-memory batched step is run again sample by sample,
    # and so is every step after it; the training is the shared_prefix one
    attempts = []

    def batched_runs_out(*args, shared_prefix=True, **kwargs):
        if not shared_prefix:
            attempts.append(1)
            raise torch.OutOfMemoryError("CUDA out of memory")
        return real(*args, shared_prefix=shared_prefix, **kwargs)

    monkeypatch.setattr("recbole_llm4msr.align.finetune.batch_loss", batched_runs_out)
    monkeypatch.setattr("recbole_llm4msr.align.finetune.listwise_forward_of", lambda *a: "batched")
    tokenizer, model = tiny_causal_lm(seed=0, initializer_range=0.5)
    fell, history = finetune(model, tokenizer, triples, str(tmp_path / "fallback"), settings, progress=False)
    assert history["fell_back_at"] == 1 and history["steps"] == 3
    assert history["losses"] == pytest.approx(runs["shared_prefix"][1]["losses"], rel=1e-5)
    for (n, a), (_, b) in zip(fell.state_dict().items(), runs["shared_prefix"][0].state_dict().items()):
        assert torch.allclose(a, b, atol=1e-5), n
    assert len(attempts) == 1  # one batched try, then sample by sample to the end
    # a run killed after falling back resumes sample by sample (no batched try again)
    every_step = LoraSettings(**{**settings.__dict__, "save_every": 1})
    tokenizer, model = tiny_causal_lm(seed=0, initializer_range=0.5)
    finetune(model, tokenizer, triples, str(tmp_path / "killed"), every_step, progress=False, stop_after=1)
    attempts.clear()
    tokenizer, model = tiny_causal_lm(seed=0, initializer_range=0.5)
    _, resumed = finetune(model, tokenizer, triples, str(tmp_path / "killed"), every_step, progress=False)
    assert attempts == [] and resumed["fell_back_at"] == 1 and resumed["steps"] == 3
    monkeypatch.undo()
    assert listwise_forward_of("auto", torch.device("cpu")) == "shared_prefix"
    assert listwise_forward_of("auto", torch.device("cuda", 0)) == "batched" == listwise_forward_of("auto", "cuda:1")
    assert listwise_forward_of("auto", torch.device("cpu"), world=2) == "batched"
    assert listwise_forward_of("batched", torch.device("cpu")) == "batched"
    with pytest.raises(FinetuneError, match="DistributedDataParallel cannot synchronise"):
        listwise_forward_of("shared_prefix", torch.device("cpu"), world=2)
    with pytest.raises(FinetuneError, match="listwise_forward must be one of auto, shared_prefix, batched, not 'x'"):
        listwise_forward_of("x", "cpu")


def test_paired_difference_of_two_rankings():
    from recbole_llm4msr.align.evaluate import _metrics, differences

    same = _metrics([0, 3, 7, 0, 1])
    d = paired_difference(same, same)
    assert d["cases"] == 5 and all(d[m] == {"difference": 0.0, "low": 0.0, "high": 0.0, "p": 1.0}
                                   for m in ("HR@1", "HR@5", "NDCG@5"))
    ranks = np.random.default_rng(0).integers(0, 20, 400)
    better, worse = _metrics(np.zeros(400, dtype=int)), _metrics(ranks)  # always first vs a random rank
    d = paired_difference(better, worse)
    assert d["HR@1"]["difference"] == pytest.approx(1 - np.mean(ranks == 0), abs=1e-4)
    assert d["HR@1"]["low"] > 0.9 and d["HR@1"]["p"] == 0.0
    noisy = _metrics(np.where(np.arange(400) % 2 == 0, ranks, 0))  # first half the time
    assert d["HR@1"]["difference"] > paired_difference(noisy, worse)["HR@1"]["difference"] > 0
    both = differences({"aligned": worse, "base": better, "popularity": worse})
    assert both["aligned - base"]["HR@1"]["high"] < 0 and both["aligned - popularity"]["HR@1"]["difference"] == 0
    with pytest.raises(ValueError, match="same cases"):
        paired_difference(better, _metrics([0, 1]))
    with pytest.raises(ValueError, match="per-case ranks"):
        paired_difference({"HR@1": 0.5}, better)


def test_a_killed_fine_tuning_resumes_exactly(toy, tmp_path):
    builder = SampleBuilder(toy, seed=0)
    pairs = [(s.prompt, s.answer) for s in builder.build(["next", "bpr"], 64)]
    settings = LoraSettings(lora_r=4, learning_rate=1e-3, batch_size=8, epochs=2, save_every=1, lora_dropout=0.1)
    whole, h_whole = finetune(tiny_causal_lm(seed=0)[1], tiny_causal_lm()[0], pairs, str(tmp_path / "a"), settings,
                              progress=False)
    stopped, state = finetune(tiny_causal_lm(seed=0)[1], tiny_causal_lm()[0], pairs, str(tmp_path / "b"), settings,
                              progress=False, stop_after=5)
    assert stopped is None and state["step"] == 5 and not is_finished(str(tmp_path / "b" / "model"))
    resumed, h_resumed = finetune(tiny_causal_lm(seed=0)[1], tiny_causal_lm()[0], pairs, str(tmp_path / "b"),
                                  settings, progress=False)
    assert h_resumed["losses"] == pytest.approx(h_whole["losses"], rel=1e-4)
    for (n, a), (_, b) in zip(whole.state_dict().items(), resumed.state_dict().items()):
        assert torch.allclose(a, b, atol=1e-5), n


def test_a_time_budget_finishes_the_model_with_the_steps_done_and_is_final(toy, tmp_path):
    builder = SampleBuilder(toy, seed=0)
    pairs = [(s.prompt, s.answer) for s in builder.build(["next", "bpr"], 32)]
    settings = LoraSettings(lora_r=4, learning_rate=1e-2, batch_size=8, save_every=10)
    model, history = finetune(tiny_causal_lm(seed=0)[1], tiny_causal_lm()[0], pairs, str(tmp_path), settings,
                              progress=False, max_seconds=1e-9)
    assert model is not None and history["steps"] == 1 and history["planned_steps"] == 4
    assert len(history["losses"]) == 1 and history["stopped"] == "time budget of 1e-09 s"
    # the same call again finishes from the stopped checkpoint: no step more, the same weights
    again, h_again = finetune(tiny_causal_lm(seed=0)[1], tiny_causal_lm()[0], pairs, str(tmp_path), settings,
                              progress=False, max_seconds=1e-9)
    assert h_again["steps"] == 1 and h_again["losses"] == history["losses"] and h_again["stopped"]
    for (n, a), (_, b) in zip(model.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, b), n
    untouched = tiny_causal_lm(seed=0)[1].state_dict()
    assert any(not torch.equal(untouched[n], v) for n, v in model.state_dict().items())  # the one step was applied
    _, whole = finetune(tiny_causal_lm(seed=0)[1], tiny_causal_lm()[0], pairs, str(tmp_path / "whole"), settings,
                        progress=False, max_seconds=3600)
    assert whole["steps"] == whole["planned_steps"] == 4 and whole["stopped"] is None
    with pytest.raises(FinetuneError, match="time budget must be above 0 seconds, not -1"):
        finetune(tiny_causal_lm()[1], tiny_causal_lm()[0], pairs, str(tmp_path / "x"), settings, max_seconds=-1)


def test_errors_name_the_problem(toy, files, tmp_path):
    builder = SampleBuilder(toy, seed=0)
    with pytest.raises(SampleError, match="task list is empty"):
        builder.build([], 10)
    with pytest.raises(SampleError, match=r"unknown task\(s\) \['mask'\]"):
        builder.build(["mask"], 10)
    with pytest.raises(SampleError, match="listwise_negatives must be at least 1, not 0"):
        SampleBuilder(toy, listwise_negatives=0)
    with pytest.raises(FinetuneError, match="below one batch"):
        finetune(tiny_causal_lm()[1], tiny_causal_lm()[0], [("a", "b")] * 3, str(tmp_path), LoraSettings(batch_size=8))
    with pytest.raises(FinetuneError, match="peft cannot put LoRA adapters"):
        finetune(tiny_causal_lm()[1], tiny_causal_lm()[0], [("a", "b")] * 8, str(tmp_path),
                 LoraSettings(batch_size=8, target_modules="no_such_layer"))
    bare = DatasetFiles(files.name, files.folder, {k: v for k, v in files.config.items() if k != "item_text_fields"})
    with pytest.raises(SampleError, match="no item text.*--allow_id_text"):
        SampleBuilder(bare)
    assert SampleBuilder(bare, allow_id_text=True).next("13").answer.startswith("item ")


def test_the_cli_saves_a_model_that_yields_another_store(data_dir, tmp_path):
    from recbole_llm4msr.knowledge.extract import plan
    from recbole_llm4msr.knowledge.llm import KnowledgeLLM
    from tests.cli_helpers import run_cli

    base = tiny_model_dir(tmp_path)
    out = tmp_path / "aligned"
    os.makedirs(out)  # a base ranking kept by an earlier try with the other scoring must not be reused
    json.dump({"ranked": {"scoring": "mean", "prompts": "x"}, "evaluation": {"base": {"cases": 5, "HR@1": 7.0},
                                                                           "popularity": {}}},
              open(out / ".base-eval.json", "w"))
    proc = run_cli("recbole_llm4msr.align.cli", "--dataset=ml-100k-msr", f"--data_path={data_dir}", f"--llm={base}",
                   f"--out={out}", "--max_samples=24", "--batch_size=8", "--eval_users=5", "--max_length=256",
                   "--tasks=next,bpr", "--scoring=sum", cwd=tmp_path)
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["evaluation"]["scoring"] == "sum answer-token log-likelihood"
    assert summary["evaluation"]["base"]["cases"] == summary["evaluation"]["aligned"]["cases"] > 0
    assert summary["evaluation"]["base"]["HR@1"] <= 1.0
    assert summary["samples"] == 24 and summary["steps"] == 3 and set(summary["evaluation"]) >= {"aligned", "base",
                                                                                                  "popularity"}
    manifest = json.load(open(out / "model" / "manifest.json"))
    assert manifest["sample_counts"] == {"next": 12, "bpr": 12} and manifest["data_fingerprint"]["train_split"]
    assert manifest["sample_settings"] == {"max_history": 10, "allow_id_text": False, "seed": 0,
                                           "candidate_popularity": "none"}
    assert len(manifest["losses"]) == manifest["steps"] and manifest["losses"][-1] == manifest["last_loss"]
    assert os.path.isfile(out / "loss.png") and os.path.isfile(out / "eval.json") and not os.path.exists(out / ".work")
    llm = KnowledgeLLM.load(str(out / "model"))
    assert llm.hidden_size == 32
    spec = dict(limit_users=10, max_prompt_tokens=4000)
    assert plan(make_spec(data_dir, llm=str(out / "model"), **spec)).fingerprint["llm"] != \
        plan(make_spec(data_dir, llm=str(base), **spec)).fingerprint["llm"]
    again = run_cli("recbole_llm4msr.align.cli", "--dataset=ml-100k-msr", f"--data_path={data_dir}", f"--llm={base}",
                    f"--out={out}", cwd=tmp_path)
    assert json.loads(again.stdout.strip().splitlines()[-1])["samples"] == 24  # finished: nothing redone
    # differences with intervals, and ranking again with a finished model (more users, the other scoring)
    first = json.load(open(out / "eval.json"))
    assert set(first["differences"]) == {"aligned - base", "aligned - popularity"}
    assert first["differences"]["aligned - base"]["HR@1"]["difference"] == \
        pytest.approx(first["aligned"]["HR@1"] - first["base"]["HR@1"], abs=1e-3)
    proc = run_cli("recbole_llm4msr.align.cli", "--dataset=ml-100k-msr", f"--data_path={data_dir}", f"--llm={base}",
                   f"--out={out}", "--evaluate_only", "--eval_users=8", "--max_length=256", cwd=tmp_path)
    later = json.load(open(out / "eval-mean-8cases.json"))
    assert later["aligned"]["cases"] == later["base"]["cases"] == len(later["popularity"]["ranks"]) == 8
    assert later["scoring"].startswith("mean") and later["differences"]["aligned - base"]["cases"] == 8
    assert json.load(open(out / "eval.json")) == first  # the training run's evaluation is kept
    assert json.loads(proc.stdout.strip().splitlines()[-1])["eval_file"].endswith("eval-mean-8cases.json")
    assert first["candidate_popularity"] == later["candidate_popularity"] == "none"
    # the same cases with popularity words on the candidates: another file, other scores, the same popularity ranker
    run_cli("recbole_llm4msr.align.cli", "--dataset=ml-100k-msr", f"--data_path={data_dir}", f"--llm={base}",
            f"--out={out}", "--evaluate_only", "--eval_users=8", "--max_length=256", "--candidate_popularity=words",
            cwd=tmp_path)
    worded = json.load(open(out / "eval-mean-8cases-popularity.json"))
    assert worded["candidate_popularity"] == "words" and worded["popularity"] == later["popularity"]
    assert worded["popularity_words"]["cases"] == 8 and "popularity_words" not in later
    assert set(worded["differences"]) == {"aligned - base", "aligned - popularity", "aligned - popularity_words"}
    # the benchmark that adds the words-alone ranker to a finished run checks it rebuilt the run's own cases
    import importlib.util
    spec = importlib.util.spec_from_file_location("align_reference", os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks", "align_reference.py"))
    reference = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reference)
    common = [f"--out={out}", "--dataset=ml-100k-msr", f"--data_path={data_dir}"]
    reference.main(common + ["--eval_users=5"])
    added = json.load(open(out / "eval-reference.json"))
    assert added["popularity_words"]["cases"] == 5 and added["aligned"] == first["aligned"]
    assert "aligned - popularity_words" in added["differences"]
    with pytest.raises(SystemExit, match="not the run's"):
        reference.main(common + ["--eval_users=6", f"--result={tmp_path / 'r.json'}"])
    assert not os.path.exists(tmp_path / "r.json")
    assert worded["base"]["cases"] == 8 and json.load(open(out / "eval-mean-8cases.json")) == later
    unfinished = run_cli("recbole_llm4msr.align.cli", "--dataset=ml-100k-msr", f"--data_path={data_dir}",
                         f"--llm={base}", f"--out={tmp_path / 'none'}", "--evaluate_only", cwd=tmp_path, check=False)
    assert unfinished.returncode == 1 and "needs a finished aligned model" in unfinished.stderr
    os.remove(base / "tokenizer.json")
    os.remove(base / "tokenizer_config.json")
    bad = run_cli("recbole_llm4msr.align.cli", "--dataset=ml-100k-msr", f"--data_path={data_dir}", f"--llm={base}",
                  f"--out={tmp_path / 'x'}", "--max_samples=16", "--eval_users=0", cwd=tmp_path, check=False)
    assert bad.returncode == 1 and "no usable tokenizer" in bad.stderr and "Traceback" not in bad.stderr


def test_a_model_directory_copied_without_its_weights_gets_them_back_from_its_adapter(data_dir, tmp_path):
    from safetensors.torch import load_file

    from tests.cli_helpers import run_cli

    base = tiny_model_dir(tmp_path)
    out = tmp_path / "aligned"
    common = ["--dataset=ml-100k-msr", f"--data_path={data_dir}", f"--llm={base}", f"--out={out}",
              "--max_samples=16", "--batch_size=8", "--eval_users=0", "--max_length=256", "--tasks=next",
              "--learning_rate=0.05"]
    run_cli("recbole_llm4msr.align.cli", *common, cwd=tmp_path)
    model = out / "model"
    assert os.path.isfile(model / "adapter" / "adapter_config.json") and not os.path.exists(out / ".work")
    trained = load_file(model / "model.safetensors")
    assert any(not torch.equal(trained[k], v) for k, v in load_file(base / "model.safetensors").items())
    os.remove(model / "model.safetensors")  # what a copy under a file-size limit brings: no weights
    proc = run_cli("recbole_llm4msr.align.cli", *common, cwd=tmp_path)
    assert "rebuilding the merged weights" in proc.stderr
    rebuilt = load_file(model / "model.safetensors")
    assert set(rebuilt) == set(trained)
    for k in trained:
        torch.testing.assert_close(rebuilt[k], trained[k], atol=1e-5, rtol=1e-4)
    assert not [f for f in os.listdir(model) if f.startswith(".weights-")]
    os.remove(model / "model.safetensors")
    import shutil

    shutil.rmtree(model / "adapter")
    bad = run_cli("recbole_llm4msr.align.cli", *common, cwd=tmp_path, check=False)
    assert bad.returncode == 1 and "no weights and no adapter/" in bad.stderr


def test_the_cli_probes_the_aligned_models_knowledge_against_the_base_models(data_dir, tmp_path):
    """--probe_knowledge: knowledge from the aligned and from the base model (item texts) into the given cache, each
    store's report, and aligned - base on the same rows for every knowledge_norm; --evaluate_only --eval_users=0
    probes alone (reusing the stores); neither ranking nor probing is an error."""
    from tests.cli_helpers import run_cli

    base = tiny_model_dir(tmp_path)
    out, cache = tmp_path / "aligned", tmp_path / "cache"
    common = ["--dataset=ml-100k-msr", f"--data_path={data_dir}", f"--llm={base}", f"--out={out}"]
    proc = run_cli("recbole_llm4msr.align.cli", *common, "--max_samples=16", "--batch_size=8", "--eval_users=0",
                   "--tasks=next", "--probe_knowledge=items", f"--knowledge_cache={cache}", cwd=tmp_path)
    path = json.loads(proc.stdout.strip().splitlines()[-1])["knowledge_file"]
    assert path == str(out / "knowledge-items.json")
    probe = json.load(open(path))
    assert probe["user_vector"] == "items" and probe["users"] == 943 and probe["rows"] > 0
    stores = [probe[k]["store"] for k in ("aligned", "base")]
    assert stores[0] != stores[1] and all(os.path.dirname(s) == str(cache / "ml-100k-msr") for s in stores)
    assert json.load(open(os.path.join(stores[0], "header.json")))["llm"] == str(out / "model")
    assert all(os.path.isfile(os.path.join(s, "report.json")) for s in stores)
    assert set(probe["aligned_minus_base"]) == {"none", "standardize", "whiten"}
    raw = probe["aligned_minus_base"]["none"]
    assert raw["aligned"] == probe["aligned"]["neighbour_probe_auc"]["knowledge"]
    assert raw["base"] == probe["base"]["neighbour_probe_auc"]["knowledge"]
    assert raw["difference"]["difference"] == pytest.approx(raw["aligned"] - raw["base"], abs=2e-4)
    assert raw["difference"]["ci95"][0] <= raw["difference"]["difference"] <= raw["difference"]["ci95"][1]
    os.remove(path)
    again = run_cli("recbole_llm4msr.align.cli", *common, "--evaluate_only", "--eval_users=0",
                    "--probe_knowledge=items", f"--knowledge_cache={cache}", cwd=tmp_path)
    assert "exists: reusing it" in again.stderr and json.load(open(path)) == probe
    os.remove(path)  # as after a kill while probing: the same training command probes the finished model
    resumed = run_cli("recbole_llm4msr.align.cli", *common, "--max_samples=16", "--batch_size=8", "--eval_users=0",
                      "--tasks=next", "--probe_knowledge=items", f"--knowledge_cache={cache}", cwd=tmp_path)
    assert "only the knowledge probe runs" in resumed.stderr and json.load(open(path)) == probe
    neither = run_cli("recbole_llm4msr.align.cli", *common, "--evaluate_only", "--eval_users=0", cwd=tmp_path,
                      check=False)
    assert neither.returncode == 1 and "--probe_knowledge" in neither.stderr


def whole_scores(model, tokenizer, pairs, scoring="mean"):
    """Every pair run whole, without gradients (the reference the shared-prompt scores must equal)."""
    import torch

    from recbole_llm4msr.align.finetune import listwise_scores

    with torch.no_grad():
        return listwise_scores(model, tokenizer, pairs, scoring, shared_prefix=False).numpy()


def forward_shapes(model):
    """The input_ids shapes of the model's forward calls, recorded into the returned list."""
    shapes = []
    model.register_forward_pre_hook(lambda m, args, kwargs: shapes.append(tuple(kwargs["input_ids"].shape)),
                                    with_kwargs=True)
    return shapes


def test_the_ranker_shares_the_prompt_and_scores_as_a_whole_pass():
    from recbole_llm4msr.align.evaluate import answer_scores
    from recbole_llm4msr.align.finetune import encode_pair

    tokenizer, model = tiny_causal_lm(seed=3, initializer_range=0.5)
    prompt, answers = "In the shop scenario the user bought: red thing 1. What next?", ["red thing 2", "blue 7", "x"]
    shared = answer_scores(model, tokenizer, prompt, answers, batch_size=2)
    whole = whole_scores(model, tokenizer, [encode_pair(tokenizer, prompt, a, 384) for a in answers])
    np.testing.assert_allclose(shared, whole, atol=1e-4)
    # scoring: sum is the whole answer's log-probability, i.e. the mean times the answer's tokens (+ EOS)
    summed = answer_scores(model, tokenizer, prompt, answers, batch_size=2, scoring="sum")
    lengths = [sum(t != -100 for t in encode_pair(tokenizer, prompt, a, 384)[1]) for a in answers]
    assert len(set(lengths)) > 1  # answers of different lengths: the two scorings differ
    np.testing.assert_allclose(summed, np.array(shared) * lengths, rtol=1e-4)
    pairs = [encode_pair(tokenizer, prompt, a, 384) for a in answers]
    np.testing.assert_allclose(whole_scores(model, tokenizer, pairs, "sum"), summed, atol=1e-3)
    with pytest.raises(ValueError, match="scoring must be one of mean, sum, not 'max'"):
        answer_scores(model, tokenizer, prompt, answers, scoring="max")


def test_a_long_prompt_is_cut_once_so_every_candidate_sees_the_same_context():
    from recbole_llm4msr.align import evaluate
    from recbole_llm4msr.align.finetune import encode_candidates, encode_pair

    tokenizer, model = tiny_causal_lm(seed=3, initializer_range=0.5)
    prompt = "In the shop scenario the user bought: " + "; ".join(f"red thing {i}" for i in range(200)) + ". Next?"
    answers = ["x", "blue 7", "a much longer title of a thing " * 3]
    pairs = encode_candidates(tokenizer, prompt, answers, 96)
    prompts = [ids[:labels.count(-100)] for ids, labels in pairs]
    assert all(p == prompts[0] for p in prompts) and all(len(ids) <= 96 for ids, _ in pairs)
    assert max(len(ids) for ids, _ in pairs) == 96  # the longest answer fills the budget
    assert encode_pair(tokenizer, prompt, answers[2], 96) == pairs[2]  # alone, the longest answer: the same cut

    shapes = forward_shapes(model)
    shared = evaluate.answer_scores(model, tokenizer, prompt, answers, max_length=96, batch_size=2)
    start = pairs[0][1].count(-100)
    # per group of two candidates: the prompt alone, then only the answers on its cache (never a whole pass)
    assert shapes[0] == (1, start) and shapes[2] == (1, start) and shapes[1][0] == 2 and shapes[1][1] < 96 - start + 1
    np.testing.assert_allclose(shared, whole_scores(model, tokenizer, pairs), atol=1e-4)


@pytest.mark.parametrize("tasks", ["next", "next,listwise"])
def test_torchrun_trains_with_ddp_over_two_processes(data_dir, tmp_path, tasks):
    """The same command under torchrun: 2 CPU processes (gloo), each global batch split, gradients averaged (with
    listwise samples: one forward pass per step on each rank)."""
    import subprocess
    import sys

    base = tiny_model_dir(tmp_path)
    common = ["--dataset=ml-100k-msr", f"--data_path={data_dir}", f"--llm={base}", "--max_samples=32",
              "--batch_size=8", "--eval_users=0", "--max_length=256", f"--tasks={tasks}", "--lora_dropout=0.0",
              "--save_every=2"]
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={port}",
                          "-m", "recbole_llm4msr.align.cli", *common, f"--out={tmp_path / 'ddp'}"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    manifest = json.load(open(tmp_path / "ddp" / "model" / "manifest.json"))
    assert manifest["world_size"] == 2 and manifest["steps"] == 4
    from tests.cli_helpers import run_cli

    run_cli("recbole_llm4msr.align.cli", *common, f"--out={tmp_path / 'one'}", cwd=tmp_path)
    single = json.load(open(tmp_path / "one" / "model" / "manifest.json"))
    assert single["world_size"] == 1
    # the same data and start: the first loss (before any update) is the mean of the two half-batch means
    assert manifest["first_loss"] == pytest.approx(single["first_loss"], rel=0.05)
    assert manifest["last_loss"] == pytest.approx(single["last_loss"], rel=0.1)


def test_trained_samples_count_short_last_batches_once_per_epoch():
    from recbole_llm4msr.align.cli import trained_samples

    # 20 samples in batches of 8: 3 steps an epoch (8, 8, 4)
    assert [trained_samples(s, 3, 8, 20) for s in (0, 1, 2, 3, 4, 6)] == [0, 8, 16, 20, 28, 40]


def test_a_time_budget_stops_every_ddp_rank_at_the_same_step_and_the_manifest_says_so(data_dir, tmp_path):
    """torchrun with --max_train_seconds: the ranks agree to stop (no rank waits in a collective of a step the
    other skipped); the manifest counts the steps and samples trained; the same command afterwards does nothing."""
    import socket
    import subprocess
    import sys

    from tests.cli_helpers import run_cli

    base = tiny_model_dir(tmp_path)
    common = ["--dataset=ml-100k-msr", f"--data_path={data_dir}", f"--llm={base}", "--max_samples=32",
              "--batch_size=8", "--eval_users=0", "--max_length=256", "--tasks=next", "--save_every=2",
              "--max_train_seconds=0.000001", f"--out={tmp_path / 'ddp'}"]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={port}",
                          "-m", "recbole_llm4msr.align.cli", *common], cwd=tmp_path,
                         env=dict(os.environ, OMP_NUM_THREADS="1"), capture_output=True, text=True, timeout=600)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    manifest = json.load(open(tmp_path / "ddp" / "model" / "manifest.json"))
    assert manifest["world_size"] == 2 and manifest["steps"] == 1 and manifest["planned_steps"] == 4
    assert manifest["trained_samples"] == 8 and manifest["stopped"] == "time budget of 1e-06 s"
    assert manifest["max_train_seconds"] == 1e-06 and len(manifest["losses"]) == 1
    again = run_cli("recbole_llm4msr.align.cli", *common, cwd=tmp_path)
    assert "nothing to do" in again.stderr and json.loads(again.stdout.strip().splitlines()[-1])["steps"] == 1


def _budget_rank(rank, init, seconds, out):
    import torch.distributed as dist

    from recbole_llm4msr.align.finetune import _past_budget

    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    try:
        verdicts = [_past_budget(s[rank], 3.0, 2, torch.device("cpu")) for s in seconds]
    finally:
        dist.destroy_process_group()
    with open(f"{out}.{rank}", "w") as f:
        json.dump(verdicts, f)


def test_the_time_budget_stops_every_rank_when_any_one_rank_is_past_it(tmp_path):
    """The budget is decided together: one rank past it (its clock ran slower or its shard was longer) stops both,
    or one rank would wait forever in the next step's gradient all-reduce. The torchrun test above has both ranks
    past a 1e-6 s budget at once, which passes without the all-reduce."""
    import torch.multiprocessing as mp

    seconds = [(5.0, 1.0), (1.0, 5.0), (1.0, 2.0), (4.0, 3.0)]  # (rank 0, rank 1) seconds; the budget is 3 s
    out = str(tmp_path / "verdict")
    mp.spawn(_budget_rank, args=(f"file://{tmp_path / 'rendezvous'}", seconds, out), nprocs=2, join=True)
    for rank in (0, 1):
        assert json.load(open(f"{out}.{rank}")) == [True, True, False, True]


def test_the_ceiling_benchmark_fits_on_training_positives_and_counts_popularity_as_the_evaluation_does(builder):
    from benchmarks.align_ceiling import cross_fitted, features, training_cases
    from recbole_llm4msr.align.evaluate import popularity_counts

    cases = training_cases(builder, negatives=4, seed=3)
    assert len(cases) > 500
    assert len({(u, s) for u, s, _, _ in cases}) == len(cases)  # one per user and scenario
    for user, scen, history, cands in cases:
        # the positive after its history: the user's training positives there, in order
        assert history and builder.positives[user][scen][:len(history) + 1] == history + [cands[0]]
        assert len(set(cands)) == 5 and not set(cands[1:]) & builder.bought[user]  # negatives: never bought
    counts = popularity_counts(builder)
    _, scen, history, cands = next(c for c in cases if counts[c[1]][c[3][0]] > 1)
    vectors = {str(i): np.ones(3, np.float32) for i in set(history + cands)}
    own = features(vectors, counts, scen, history, cands, leave_out=cands[0])["pop"][0, 0]
    assert own == pytest.approx(np.log1p(counts[scen][cands[0]] - 1))  # a training positive does not count itself
    assert features(vectors, counts, scen, history, cands)["pop"][0, 0] == pytest.approx(
        np.log1p(counts[scen][cands[0]]))
    # cross-fitting: every candidate is a feature of its own (one-hot), so a model that saw a case ranks its positive
    # first, and one that did not scores its candidates alike (only the features of other cases have weights)
    n = 40
    rows = [{"x": np.eye(4 * n)[4 * k:4 * k + 4], "pop": np.zeros((4, 1))} for k in range(n)]
    scores = cross_fitted(rows, ("x",))
    assert all(np.ptp(s) < 1e-9 for s in scores)
    from sklearn.linear_model import LogisticRegression

    seen = LogisticRegression(max_iter=2000).fit(np.eye(4 * n), np.tile([1, 0, 0, 0], n))
    assert all(np.argmax(seen.decision_function(r["x"])) == 0 for r in rows)  # what leaking would look like


def test_the_scale_benchmarks_random_qwen2_model_runs_through_the_alignment(data_dir, tmp_path):
    """benchmarks/scale_llm.py: a random model of a Qwen2 shape with a real tokenizer, a local model directory that
    llm4msr-align wraps with LoRA, trains, ranks with and saves (the path a 0.5B-7B model takes on a GPU)."""
    import sys

    from recbole_llm4msr.knowledge.llm import KnowledgeLLM
    from tests.cli_helpers import run_cli

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "benchmarks"))
    import scale_llm

    about = scale_llm.build("tiny", str(tmp_path / "qwen"), tokenizer=str(tiny_model_dir(tmp_path)))
    assert about["random_weights"] and about["parameters"] > 0 and about["vocab_size"] == 258
    llm = KnowledgeLLM.load(str(tmp_path / "qwen"))
    assert llm.hidden_size == 32 and type(llm.model).__name__.startswith("Qwen2")
    proc = run_cli("recbole_llm4msr.align.cli", "--dataset=ml-100k-msr", f"--data_path={data_dir}",
                   f"--llm={tmp_path / 'qwen'}", f"--out={tmp_path / 'out'}", "--max_samples=16", "--batch_size=8",
                   "--eval_users=3", "--max_length=256", "--tasks=next,listwise", cwd=tmp_path)
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["steps"] == 2 and summary["evaluation"]["aligned"]["cases"] == 3
    with pytest.raises(ValueError, match="--shape must be one of"):
        scale_llm.build("gpt-5", str(tmp_path / "x"), tokenizer=str(tiny_model_dir(tmp_path)))


def test_the_knowledge_words_benchmark_builds_worded_item_stores_and_users_as_the_pipeline(data_dir, tmp_path):
    """benchmarks/align_knowledge_words.py: item texts carry their popularity words, both models encode them into
    item stores, a user is the mean of the user's training positives exactly as the pipeline's ``items`` stores make
    it, and the normalisations are the loader's; the probe compares every pair it names. Then
    benchmarks/align_knowledge_pool.py pools two such runs: its per-run differences are the runs' own, the pooled one
    their mean, and runs that are not one comparison are refused."""
    import importlib.util

    from recbole_llm4msr.knowledge import store as kstore
    from recbole_llm4msr.knowledge import extract
    from recbole_llm4msr.knowledge.extract import build_knowledge, plan
    from recbole_llm4msr.knowledge.loader import apply_transform, normalization

    spec = importlib.util.spec_from_file_location("align_knowledge_words", os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks", "align_knowledge_words.py"))
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    os.makedirs(tmp_path / "a")
    os.makedirs(tmp_path / "b")
    aligned, base = tiny_model_dir(tmp_path / "a", seed=1), tiny_model_dir(tmp_path / "b", seed=0)
    plain = [build_knowledge(make_spec(data_dir, tmp_path / "plain", llm=str(m), user_vector="items"),
                             show_progress=False)["cache"] for m in (aligned, base)]
    store = kstore.KnowledgeStore(plain[1])
    users = list(store.ids("user"))
    kplan = plan(make_spec(data_dir, llm=str(base), user_vector="items"))
    positives = kplan.builder.user_positive_items()
    assert bench.user_means is extract.user_means  # the pipeline's own function, not a second implementation
    means, _ = extract.user_means(users, positives, store.ids("item"), store.vectors("item"))
    np.testing.assert_allclose(means, np.asarray(store.vectors("user"), np.float32), rtol=1e-2, atol=1e-3)  # stored in 16 bits
    stored = np.asarray(store.vectors("user"), np.float32)
    for norm in ("standardize", "whiten"):  # the loader's statistics of the same users, applied as a run does
        np.testing.assert_allclose(bench.normalise(stored, norm),
                                   apply_transform(stored, normalization(store, "user", norm)), rtol=1e-3, atol=1e-3)
    result = tmp_path / "words.json"
    # a missing store is named before any model loads (no worded store is built)
    with pytest.raises(SystemExit, match=r"--plain_stores .*nowhere"):
        bench.main([f"--aligned={aligned}", f"--base={base}", "--dataset=ml-100k-msr", f"--data_path={data_dir}",
                    f"--cache={tmp_path / 'worded'}", "--plain_stores", plain[0], str(tmp_path / "nowhere")])
    assert not (tmp_path / "worded").exists()
    out = bench.main([f"--aligned={aligned}", f"--base={base}", "--dataset=ml-100k-msr", f"--data_path={data_dir}",
                      f"--cache={tmp_path / 'worded'}", "--plain_stores", *plain, f"--result={result}",
                      "--resamples=50"])
    assert json.load(open(result)) == json.loads(json.dumps(out))
    assert out["users"] == len(users) == 943 and out["items"] == len(store.ids("item")) and out["rows"] > 0
    worded = kstore.KnowledgeStore(out["stores"]["base+words"]["store"])
    texts = [r["prompt"] for (kind, _), r in worded.texts().items() if kind == "item"]
    words = "|".join(map(re.escape, POPULARITY_WORDS))
    assert len(texts) == out["items"] and all(re.search(rf"\(({words})\)$", t) for t in texts)
    assert sum(out["word_counts"].values()) == out["items"] and len(out["word_counts"]) >= 3
    for norm in ("none", "standardize", "whiten"):
        res = out["by_norm"][norm]
        assert set(res["auc"]) == {"aligned+words", "base+words", "aligned", "base"}
        assert set(res["differences"]) == {"aligned+words - base+words", "aligned - base", "aligned+words - aligned",
                                           "base+words - base"}
        d = res["differences"]["aligned+words - base+words"]
        assert d["difference"] == pytest.approx(res["auc"]["aligned+words"] - res["auc"]["base+words"], abs=2e-4)
        assert d["resamples"] == 50 and d["p"] <= d["p_bh"] <= 1.0  # corrected over the 6 aligned - base tests
        assert "p_bh" not in res["differences"]["base+words - base"]

    # benchmarks/align_knowledge_pool.py: a second aligned model on the same worded texts, both pooled against the base
    spec = importlib.util.spec_from_file_location("align_knowledge_pool", os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks", "align_knowledge_pool.py"))
    pool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pool)
    os.makedirs(tmp_path / "c")
    other = bench.main([f"--aligned={tiny_model_dir(tmp_path / 'c', seed=2)}", f"--base={base}",
                        "--dataset=ml-100k-msr", f"--data_path={data_dir}", f"--cache={tmp_path / 'worded'}",
                        f"--result={tmp_path / 'words2.json'}", "--resamples=50"])
    assert other["stores"]["base+words"]["store"] == out["stores"]["base+words"]["store"]  # the base store, reused
    runs = [f"one={result}", f"two={tmp_path / 'words2.json'}"]
    pooled = pool.main(["--runs", *runs, f"--out={tmp_path / 'pool'}", f"--data_path={data_dir}", f"--base={base}",
                        "--resamples=50"])
    assert json.load(open(tmp_path / "pool" / "knowledge-pool.json")) == json.loads(json.dumps(pooled))
    assert os.path.getsize(tmp_path / "pool" / "knowledge-pool.png") > 0
    for norm in ("none", "standardize", "whiten"):
        res = pooled["by_norm"][norm]
        # the same users, rows and resamples as the words benchmark: its own aligned - base, to the digit
        assert res["per_run"]["one"] == {k: v for k, v in out["by_norm"][norm]["differences"][
            "aligned+words - base+words"].items() if k != "p_bh"}
        assert res["per_run"]["two"] == {k: v for k, v in other["by_norm"][norm]["differences"][
            "aligned+words - base+words"].items() if k != "p_bh"}
        diffs = [res["per_run"][n]["difference"] for n in ("one", "two")]
        assert res["pooled"]["pooled"] == 2 and res["pooled"]["difference"] == pytest.approx(np.mean(diffs), abs=2e-4)
        assert res["over_runs"]["mean"] == pytest.approx(np.mean(diffs), abs=1e-4) and res["over_runs"]["runs"] == 2
        assert res["pooled"]["p"] <= res["pooled"]["p_bh"] <= 1.0
    # the plain item texts (user stores, not item stores): the same run twice pools to its own difference
    dataset, k, plain_runs, plain_base = pool.read_runs([runs[0], f"again={result}"], "plain")
    assert (dataset, k, plain_base) == ("ml-100k-msr", 20, out["stores"]["base"]["store"])
    assert plain_runs == {"one": out["stores"]["aligned"]["store"], "again": out["stores"]["aligned"]["store"]}
    twice = pool.pool(plain_runs, plain_base, bench.probe_data(dataset, str(data_dir), str(base), k), k, resamples=50)
    own = out["by_norm"]["none"]["differences"]["aligned - base"]
    assert twice["by_norm"]["none"]["per_run"]["one"] == {k: v for k, v in own.items() if k != "p_bh"}
    assert twice["by_norm"]["none"]["pooled"]["difference"] == own["difference"]
    assert twice["by_norm"]["none"]["over_runs"]["sd"] == 0.0 and twice["by_norm"]["none"]["over_runs"]["p"] is None
    with pytest.raises(ValueError, match="at least two runs"):
        pool.read_runs(runs[:1], "words")
    with pytest.raises(ValueError, match="no 'aligned' store.*--plain_stores"):
        pool.read_runs(runs, "plain")  # the second run was made without the plain stores
    moved = json.load(open(tmp_path / "words2.json"))
    moved["stores"]["base+words"]["store"] = out["stores"]["aligned+words"]["store"]
    json.dump(moved, open(tmp_path / "moved.json", "w"))
    with pytest.raises(ValueError, match="base store .* differs from run 'one'"):
        pool.read_runs([runs[0], f"three={tmp_path / 'moved.json'}"], "words")


def test_the_seeds_benchmark_pools_runs_case_by_case_and_corrects_per_run_tests(tmp_path):
    """benchmarks/align_seeds.py: the pooled difference is the mean over every run's cases (not the mean of the runs'
    means), its interval holds it, a reference the aligned model always beats gets p 0, an equal one p 1; per-run
    p-values are BH-adjusted; a bad --runs is refused; the JSON and the PNG are written."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("align_seeds", os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks", "align_seeds.py"))
    seeds = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(seeds)
    rng = np.random.default_rng(0)
    runs = {}
    for label, n in (("a", 300), ("b", 100)):
        aligned = rng.integers(0, 20, n)
        runs[label] = {"aligned": {"ranks": aligned.tolist(), "HR@1": float((aligned == 0).mean())},
                       "worse": {"ranks": np.minimum(aligned + 1, 19).tolist(), "HR@1": 0.0},
                       "same": {"ranks": aligned.tolist(), "HR@1": float((aligned == 0).mean())}}
    out = seeds.summarise(runs, ["worse", "same"], resamples=300)
    hits = np.concatenate([(np.asarray(runs[k]["aligned"]["ranks"]) == 0) for k in ("a", "b")])
    pooled = out["pooled"]["worse"]["HR@1"]
    assert out["pooled"]["worse"]["cases"] == 400 and pooled["difference"] == pytest.approx(hits.mean(), abs=1e-4)
    assert pooled["low"] <= pooled["difference"] <= pooled["high"] and pooled["p"] == 0.0
    assert out["pooled"]["same"]["HR@1"] == {"difference": 0.0, "low": 0.0, "high": 0.0, "p": 1.0}
    for label in ("a", "b"):
        cell = out["per_run"]["worse"][label]["HR@1"]
        assert cell["p"] <= cell["p_bh"] and cell["difference"] == pytest.approx(
            float((np.asarray(runs[label]["aligned"]["ranks"]) == 0).mean()), abs=1e-4)
    paths = []
    for label, ev in runs.items():
        paths.append(tmp_path / f"{label}.json")
        json.dump(ev, open(paths[-1], "w"))
    summary = seeds.main(["--runs", f"a={paths[0]}", f"b={paths[1]}", "--versus", "worse", "--resamples=100",
                          f"--out={tmp_path / 'out'}"])
    assert json.load(open(tmp_path / "out" / "seeds.json"))["pooled"]["worse"] == summary["pooled"]["worse"]
    assert os.path.getsize(tmp_path / "out" / "seeds.png") > 1000
    with pytest.raises(SystemExit, match="LABEL=EVAL_JSON"):
        seeds.main(["--runs", str(paths[0]), f"--out={tmp_path / 'x'}"])
    with pytest.raises(ValueError, match="no 'popularity'"):
        seeds.summarise(runs, ["popularity"])


def test_wrapping_with_lora_shows_no_deprecation_of_the_stack_but_other_warnings_still_show():
    """peft reads transformers' deprecated is_gradient_checkpointing on every wrap (a FutureWarning per alignment
    or TSLRec SFT); wrap_lora hides exactly that one."""
    import warnings

    from recbole_llm4msr.align.finetune import wrap_lora
    from tests.knowledge_helpers import tiny_causal_lm

    _, model = tiny_causal_lm()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        wrapped = wrap_lora(model, LoraSettings())
        warnings.warn("something else", FutureWarning)
    assert any(n.startswith("base_model") for n, _ in wrapped.named_parameters())  # it is a peft model
    assert [str(w.message) for w in seen] == ["something else"]
