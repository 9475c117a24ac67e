"""The knowledge report: geometry, the neighbour probe against random and no-LLM baselines, attribute probes,
the projection plot; it never reads the test split."""
import json
import logging
import os

import numpy as np
import pandas as pd
import pytest

from recbole_llm4msr.knowledge.files import DatasetFiles
from recbole_llm4msr.knowledge import report
from recbole_llm4msr.knowledge.report import _weighted_auc, auc_difference, choose_norm, geometry, knowledge_report, profile_vectors
from recbole_llm4msr.knowledge.store import KnowledgeStore
from tests.knowledge_helpers import make_spec


def test_geometry_tells_one_shared_vector_from_real_spread():
    rng = np.random.default_rng(0)
    shared = rng.standard_normal(64) * 10 + rng.standard_normal((500, 64)) * 0.5  # "every user the same vector"
    spread = rng.standard_normal((500, 64))
    g_shared, g_spread = geometry(shared), geometry(spread)
    assert g_shared["mean_cosine_raw"] > 0.95 and g_shared["mean_share"] > 0.95
    assert abs(g_spread["mean_cosine_raw"]) < 0.02 and g_spread["mean_share"] < 0.2
    assert abs(g_shared["mean_cosine_standardized"]) < 0.02  # standardising removes the shared direction
    assert g_spread["effective_rank"] > 50 and g_shared["effective_rank"] > 50  # the noise itself is full rank
    assert geometry(np.outer(rng.standard_normal(500), rng.standard_normal(64)))["effective_rank"] < 1.5


def test_the_paired_bootstrap_tells_a_real_difference_from_noise():
    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(400), 5)
    signal = rng.standard_normal(len(users))
    y = (signal + rng.standard_normal(len(users)) > 0).astype(int)
    good, noise = signal + 0.5 * rng.standard_normal(len(users)), rng.standard_normal(len(users))
    better = auc_difference(y, good, noise, users)
    assert better["difference"] > 0.2 and better["ci95"][0] > 0.1 and better["resamples"] == 200
    assert better["p"] == 0.0 and auc_difference(y, noise, good, users)["p"] == 0.0
    # two equally good scores: the interval holds 0 (a 95% interval: nearly always, over independent draws)
    draws = [auc_difference(y, signal + rng.standard_normal(len(users)), signal + rng.standard_normal(len(users)),
                            users, n_boot=100) for _ in range(10)]
    assert sum(d["ci95"][0] < 0 < d["ci95"][1] for d in draws) >= 8
    assert sum(d["p"] >= 0.05 for d in draws) >= 8 and all(0.0 <= d["p"] <= 1.0 for d in draws)
    assert auc_difference(y, good, good, users) == {"difference": 0.0, "ci95": [0.0, 0.0], "p": 1.0,
                                                 "resamples": 200}
    assert auc_difference(np.ones(len(users)), good, noise, users) is None


def test_the_pooled_bootstrap_averages_several_scores_against_one_reference():
    """A list of score arrays: the difference is the mean of their AUC differences, on the same resamples (a pooled
    pair of one good and one noise score sits between the two alone), and a single array in a list is the pair."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(1)
    users = np.repeat(np.arange(300), 4)
    signal = rng.standard_normal(len(users))
    y = (signal + rng.standard_normal(len(users)) > 0).astype(int)
    good, fair, noise = (signal + w * rng.standard_normal(len(users)) for w in (0.3, 1.0, 8.0))
    pooled = auc_difference(y, [good, noise], fair, users)
    expected = (roc_auc_score(y, good) + roc_auc_score(y, noise)) / 2 - roc_auc_score(y, fair)
    assert pooled["pooled"] == 2 and pooled["difference"] == pytest.approx(expected, abs=1e-4)
    alone = [auc_difference(y, s, fair, users)["difference"] for s in (good, noise)]
    assert min(alone) < pooled["difference"] < max(alone) and pooled["ci95"][0] <= pooled["difference"] <= pooled["ci95"][1]
    single = auc_difference(y, [good], fair, users)
    assert single.pop("pooled") == 1 and single == auc_difference(y, good, fair, users)
    with pytest.raises(ValueError, match="empty list"):
        auc_difference(y, [], fair, users)
    # the baseline may be a list too (e.g. a baseline's seeds): its mean AUC, on the same resamples
    both = auc_difference(y, [good, noise], [fair, noise], users)
    assert both["pooled_baseline"] == 2 and both["difference"] == pytest.approx(
        expected + roc_auc_score(y, fair) - (roc_auc_score(y, fair) + roc_auc_score(y, noise)) / 2, abs=1e-4)
    one = auc_difference(y, good, [fair], users)
    assert one.pop("pooled_baseline") == 1 and one == auc_difference(y, good, fair, users)
    with pytest.raises(ValueError, match="empty list"):
        auc_difference(y, good, [], users)


def test_the_two_level_bootstrap_draws_the_seed_pairs_as_well_as_the_users():
    """paired_lists: every resample draws the (model seed, baseline seed) pairs with replacement beside the users: one
    resample recomputed by hand; the point difference is the unpaired lists'; pairs that disagree widen the interval
    far beyond the users-only one, pairs that agree do not; lists of other lengths are refused."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(3)
    users = np.repeat(np.arange(200), 5)
    signal = rng.standard_normal(len(users))
    y = (signal + rng.standard_normal(len(users)) > 0).astype(int)
    good, fair, bad = (signal + w * rng.standard_normal(len(users)) for w in (0.3, 1.0, 3.0))
    one = auc_difference(y, [good, bad], [fair, fair], users, n_boot=1, seed=7, paired_lists=True)
    draw = np.random.default_rng(7)
    member = np.unique(users.astype(str), return_inverse=True)[1]
    weights = np.bincount(draw.integers(0, 200, 200), minlength=200)[member]
    pairs = np.bincount(draw.integers(0, 2, 2), minlength=2)
    by_hand = sum(c * (roc_auc_score(y, a, sample_weight=weights) - roc_auc_score(y, fair, sample_weight=weights))
                  for c, a in zip(pairs, (good, bad))) / pairs.sum()
    assert one["ci95"] == [round(by_hand, 4)] * 2 and one["resampled_pairs"] == 2
    disagree = auc_difference(y, [good, bad], [fair, fair], users, paired_lists=True)
    users_only = auc_difference(y, [good, bad], [fair, fair], users)
    assert disagree["difference"] == users_only["difference"]
    width = lambda d: d["ci95"][1] - d["ci95"][0]  # noqa: E731
    assert width(disagree) > 3 * width(users_only)
    agree = auc_difference(y, [good, good], [fair, fair], users, n_boot=1000, paired_lists=True)
    assert width(agree) == pytest.approx(width(auc_difference(y, [good, good], [fair, fair], users, n_boot=1000)),
                                         rel=0.25)
    with pytest.raises(ValueError, match="paired_lists needs two lists of the same length"):
        auc_difference(y, [good, bad], [fair], users, paired_lists=True)
    with pytest.raises(ValueError, match="paired_lists"):
        auc_difference(y, good, fair, users, paired_lists=True)


def test_a_resample_is_a_weighting_of_the_rows():
    """The bootstrap's weighted AUC equals sklearn's AUC on the resampled rows themselves (ties included)."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(3)
    member = rng.integers(0, 120, 900)
    y = rng.integers(0, 2, 900).astype(float)
    score = np.round(y * 0.5 + rng.standard_normal(900), 1)  # many ties
    distinct, group = np.unique(score, return_inverse=True)
    for _ in range(5):
        draw = rng.integers(0, 120, 120)
        rows = np.concatenate([np.flatnonzero(member == u) for u in draw])
        weights = np.bincount(draw, minlength=120)[member].astype(float)
        assert _weighted_auc(group, y, weights, len(distinct)) == pytest.approx(roc_auc_score(y[rows], score[rows]),
                                                                                 abs=1e-12)
    only_negatives = np.where(y > 0, 0.0, 1.0)
    assert _weighted_auc(group, y, only_negatives, len(distinct)) is None


class FakeStore:
    """A store whose user vectors are given (the report only reads ids, vectors and the header)."""

    def __init__(self, users, vectors, path):
        self._users, self._vectors, self.path = users, vectors, str(path)
        self.header = {"model": "fake", "mode": "prompt", "pooling": "last"}

    def ids(self, kind):
        return self._users

    def vectors(self, kind):
        return self._vectors


def informative_setup(data_dir, monkeypatch):
    """(files, the split names read so far, train, users, informative vectors: the no-LLM profile's)."""
    files = DatasetFiles.from_spec(make_spec(data_dir))
    read = []
    real = DatasetFiles.split_interactions
    monkeypatch.setattr(DatasetFiles, "split_interactions", lambda self, part: read.append(part) or real(self, part))
    train = files.train_interactions()
    users = sorted(train["user"].unique(), key=str)
    return files, read, train, users, profile_vectors(users, train, files.item_texts()).toarray().astype(np.float32)


def test_the_neighbour_probe_separates_informative_from_random_vectors(data_dir, tmp_path, monkeypatch):
    files, read, train, users, informative = informative_setup(data_dir, monkeypatch)
    out = knowledge_report(FakeStore(users, informative, tmp_path), files, out_dir=str(tmp_path), k=20,
                           norms=("standardize",))
    probe = out["neighbour_probe_auc"]
    assert probe["knowledge"] == pytest.approx(probe["profile (no LLM)"], abs=1e-3)  # the same vectors
    assert probe["knowledge"] > probe["random"] + 0.02
    versus = out["neighbour_probe_vs_profile"]  # the same vectors: no difference, and an interval around none
    assert versus["difference"] == pytest.approx(0, abs=1e-3) and versus["ci95"][0] <= 0 <= versus["ci95"][1]
    standardized = out["neighbour_probe_by_norm"]["standardize"]  # the probe as a run with knowledge_norm sees it
    assert standardized["vs_profile"]["difference"] == pytest.approx(
        standardized["auc"] - probe["profile (no LLM)"], abs=2e-4)
    assert standardized["auc"] > probe["random"]
    assert set(read) == {"train", "valid"}  # never the test split
    with pytest.raises(ValueError, match="never|not 'test'"):
        files.split_interactions("test")
    attrs = out["attribute_auc"]
    assert set(attrs) == {"gender", "occupation"}  # age (61 values) and zip codes are no attributes here
    assert attrs["gender"]["knowledge"] > 0.6  # what a user watched says something about them
    # the lesser references: the bag of item ids, and the ids with the item's categories (ml-100k's `class`)
    assert {report.ITEMS_ONLY, report.ITEMS_CATEGORIES} <= set(probe)
    assert probe[report.ITEMS_ONLY] > probe["random"] + 0.02
    for name, d in out["neighbour_probe_vs_references"].items():
        assert d["difference"] == pytest.approx(probe["knowledge"] - probe[name], abs=2e-4)
    assert set(standardized["vs_references"]) == {report.ITEMS_ONLY, report.ITEMS_CATEGORIES}
    # per activity group: thirds of the users by training positives, every probed row in exactly one
    groups = out["neighbour_probe_by_activity"]
    assert len(groups) == 3 and sum(g["rows"] for g in groups) == out["neighbour_probe_rows"]
    assert all(a["positives"][1] < b["positives"][0] for a, b in zip(groups, groups[1:]))  # lightest first
    assert all(abs(g["users"] - groups[0]["users"]) <= 0.2 * groups[0]["users"] for g in groups)
    for g in groups:  # the knowledge here is the profile's vectors: level with it in every group
        assert set(g["vs"]) == {"profile (no LLM)", report.ITEMS_ONLY, report.ITEMS_CATEGORIES}
        assert set(g["vs"][report.ITEMS_ONLY]) == {"knowledge", "knowledge (standardize)"}
        assert g["vs"]["profile (no LLM)"]["knowledge"]["difference"] == pytest.approx(0, abs=2e-3)
        for ref, d in g["vs"].items():
            assert d["knowledge"]["difference"] == pytest.approx(g["auc"]["knowledge"] - g["auc"][ref], abs=2e-4)
        assert g["auc"]["knowledge"] > g["auc"]["random"]
    saved = json.load(open(tmp_path / "report.json"))
    assert saved["neighbour_probe_auc"] == probe and saved["geometry"]["users"] == len(users)
    assert saved["neighbour_probe_by_activity"] == groups
    assert os.path.getsize(tmp_path / "report.png") > 5000


def test_the_probe_by_activity_finds_knowledge_that_helps_only_light_users():
    """Scores right on the rows of the 20 lightest of 60 users and noise elsewhere: the lightest third shows it
    (AUC 1, ahead of the reference with an interval above 0), the heaviest third does not."""
    import pandas as pd

    rng = np.random.default_rng(0)
    train = pd.DataFrame([(f"u{n}", f"i{j}", 1.0) for n in range(60) for j in range(n)],
                         columns=["user", "item", "label"])  # user n has n training positives
    rows = pd.DataFrame([(f"u{n}", f"i{j}", float(j % 2)) for n in range(60) for j in range(10)],
                        columns=["user", "item", "label"])
    light = rows["user"].str[1:].astype(int).to_numpy() < 20
    noise = rng.standard_normal(len(rows))
    scores = {"knowledge": np.where(light, rows["label"].to_numpy(), noise), "reference": rng.standard_normal(len(rows))}
    groups = report.probe_by_activity(rows, train, scores, references=["reference"])
    assert [g["positives"] for g in groups] == [[0, 19], [20, 39], [40, 59]]
    assert [g["users"] for g in groups] == [20, 20, 20] and [g["rows"] for g in groups] == [200, 200, 200]
    assert groups[0]["auc"]["knowledge"] == 1.0 and groups[0]["vs"]["reference"]["knowledge"]["ci95"][0] > 0.2
    assert abs(groups[2]["auc"]["knowledge"] - 0.5) < 0.15
    heavy = groups[2]["vs"]["reference"]["knowledge"]["ci95"]
    assert heavy[0] < 0 < heavy[1]
    with pytest.raises(ValueError, match="at least one group"):
        report.probe_by_activity(rows, train, scores, references=["reference"], groups=0)


def test_the_category_reference_reads_only_the_fields_after_the_title(data_dir):
    files = DatasetFiles.from_spec(make_spec(data_dir))
    assert files.config["item_text_fields"][1:] == ["class"]
    full, categories = files.item_texts(), files.item_texts(fields=["class"])
    assert full["1"].startswith("Toy Story") and categories["1"] == "Animation Children's Comedy"
    train = files.train_interactions()
    users = sorted(train["user"].unique(), key=str)[:50]
    refs = report.reference_profiles(users, train, files)
    assert set(refs) == {report.ITEMS_ONLY, report.ITEMS_CATEGORIES}
    ids_only = refs[report.ITEMS_ONLY]
    assert ids_only.shape[0] == 50 and ids_only.shape[1] < refs[report.ITEMS_CATEGORIES].shape[1]  # + genre words
    files.config["item_text_fields"] = ["movie_title"]  # a title only: no categories to add
    assert set(report.reference_profiles(users, train, files)) == {report.ITEMS_ONLY}


def test_two_knowledges_are_compared_on_the_same_users_rows(data_dir, tmp_path, monkeypatch):
    """probe_versus: A - B on the rows of the users both stores hold, each store's vectors matched to its own ids
    (a store holding the same vectors in another order is no different), a real difference found, never the test
    split read, and stores without a common user an error."""
    files, read, train, users, informative = informative_setup(data_dir, monkeypatch)
    for name in "abcd":
        (tmp_path / name).mkdir()
    a = FakeStore(users, informative, tmp_path / "a")
    backwards = FakeStore(users[::-1], informative[::-1].copy(), tmp_path / "b")
    same = report.probe_versus(a, backwards, files, norms=("none", "standardize"))
    assert same["users"] == len(users)
    for norm in ("none", "standardize"):
        r = same["by_norm"][norm]
        assert r["a"] == r["b"] and r["a_minus_b"]["difference"] == 0
    some = users[: len(users) * 3 // 4]  # B holds three quarters of the users, random vectors
    noise = FakeStore(some, np.random.default_rng(0).standard_normal((len(some), 16)).astype(np.float32),
                      tmp_path / "c")
    out = report.probe_versus(a, noise, files, norms=("none",))
    valid = files.split_interactions("valid")
    assert out["users"] == len(some) and out["rows"] == int(valid["user"].isin(set(some)).sum())
    r = out["by_norm"]["none"]
    assert r["a"] > r["b"] + 0.02 and r["a_minus_b"]["ci95"][0] > 0
    assert set(read) == {"train", "valid"}
    with pytest.raises(ValueError, match="no user in common"):
        report.probe_versus(a, FakeStore(["nobody"], informative[:1], tmp_path / "d"), files)
    a.header["fingerprint"] = {"train_split": "aaa"}
    backwards.header["fingerprint"] = {"train_split": "bbb"}
    with pytest.raises(ValueError, match="different training splits"):
        report.probe_versus(a, backwards, files)


def test_a_built_store_records_its_geometry_and_the_cli_writes_the_report(data_dir, tmp_path):
    from tests.cli_helpers import run_cli
    from tests.knowledge_helpers import tiny_model_dir

    model_dir = tiny_model_dir(tmp_path)
    out = run_cli("recbole_llm4msr.knowledge.cli", "--dataset=ml-100k-msr", f"--data_path={data_dir}",
                  f"--llm={model_dir}", "--limit_users=120", "--max_prompt_tokens=3000", "--report",
                  f"--cache_dir={tmp_path / 'kc'}", cwd=tmp_path)
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    store = KnowledgeStore(summary["cache"])
    assert store.header["geometry"]["users"] == 120 and "mean_cosine_raw" in store.header["geometry"]
    assert summary["report"]["neighbour_probe_auc"]["knowledge"] is not None
    assert os.path.isfile(os.path.join(store.path, "report.json"))
    auto = summary["report"]["knowledge_norm_auto"]  # what knowledge_norm: auto will pick, kept for the runs
    assert auto["chosen"] in ("none", "standardize", "whiten") and auto["chosen"] == max(auto["auc"],
                                                                                       key=auto["auc"].get)
    assert json.load(open(os.path.join(store.path, "norm-choice.json")))["chosen"] == auto["chosen"]
    assert auto["auc"]["none"] == summary["report"]["neighbour_probe_auc"]["knowledge"]  # the same probe


def test_knowledge_quality_rows_of_two_writers_are_both_kept(tmp_path):
    """benchmarks/knowledge_quality.py re-reads its table under a lock before each row: a row written meanwhile by
    another process (another option of the same dataset) is kept, a row of the same option is replaced."""
    from benchmarks.knowledge_quality import FIELDS, read_rows, record

    def row(option, probe):
        return dict({k: "" for k in FIELDS}, option=option, probe_knowledge=probe)

    path = str(tmp_path / "knowledge-quality-toy.csv")
    record(path, [row("minilm", "0.64")], "toy")  # one process
    record(path, [row("smollm2-last", "0.63")], "toy")  # another one, which never saw the first row in memory
    record(path, [row("minilm", "0.65")], "toy")
    assert [(r["option"], r["probe_knowledge"]) for r in read_rows(path)] == [("smollm2-last", "0.63"),
                                                                              ("minilm", "0.65")]
    assert open(path[:-4] + ".md").read().count("| minilm |") == 1


def test_knowledge_versus_rows_replace_their_pair_and_keep_others(tmp_path):
    from benchmarks.knowledge_quality import VERSUS_FIELDS, read_rows, record_versus

    def rows(a, b, diff):
        return [dict({k: "" for k in VERSUS_FIELDS}, a=a, b=b, norm=n, a_minus_b=diff) for n in ("none", "whiten")]

    path = str(tmp_path / "knowledge-versus-toy.csv")
    record_versus(path, rows("aligned", "base", "+0.0010"), "toy")
    record_versus(path, rows("minilm", "base", "-0.0020"), "toy")
    record_versus(path, rows("aligned", "base", "+0.0030"), "toy")
    got = [(r["a"], r["norm"], r["a_minus_b"]) for r in read_rows(path)]
    assert got == [("minilm", "none", "-0.0020"), ("minilm", "whiten", "-0.0020"), ("aligned", "none", "+0.0030"),
                   ("aligned", "whiten", "+0.0030")]
    assert open(path[:-4] + ".md").read().count("| aligned | base |") == 2


def test_auto_normalisation_picks_the_best_probe_keeps_its_choice_and_prefers_none_on_ties(data_dir, tmp_path,
                                                                                           monkeypatch):
    files = DatasetFiles.from_spec(make_spec(data_dir))
    train = files.train_interactions()
    users = sorted(train["user"].unique(), key=str)
    rng = np.random.default_rng(0)
    # an informative profile drowned by a few huge, meaningless dimensions: standardising must win over none
    signal = profile_vectors(users, train, files.item_texts()).toarray().astype(np.float32)
    x = np.hstack([signal, 100 * rng.standard_normal((len(users), 4)).astype(np.float32)])
    fake = FakeStore(users, x, tmp_path)
    out = choose_norm(fake, files, norms=("none", "standardize"), k=20)
    assert out["chosen"] == "standardize" and out["auc"]["standardize"] > out["auc"]["none"] + 0.02
    assert json.load(open(tmp_path / "norm-choice.json"))["chosen"] == "standardize"

    def no_probe(*args, **kwargs):
        raise AssertionError("the kept choice was not reused")

    monkeypatch.setattr(report, "neighbour_scores", no_probe)
    assert choose_norm(fake, files, norms=("none", "standardize"), k=20) == out  # kept: same split, k, norms
    # another k: chosen again; equal probes (constant scores): the earlier, simpler option wins
    monkeypatch.setattr(report, "neighbour_scores", lambda users, x, train, rows, k: np.zeros(len(rows)))
    tie = choose_norm(fake, files, norms=("none", "standardize", "whiten"), k=5)
    assert tie["chosen"] == "none" and set(tie["auc"].values()) == {0.5} and tie["k"] == 5
    with pytest.raises(ValueError, match="some of none, standardize, whiten"):
        choose_norm(fake, files, norms=("auto",))


def test_the_profile_knowledge_control_is_a_store_a_run_accepts_holding_the_profile(data_dir, store, tmp_path):
    """benchmarks/profile_knowledge.py: the no-LLM profile (TF-IDF, truncated SVD) as a store beside the source --
    the source's scenarios and data fingerprint, its own key, users' vectors that are the profile's SVD (and place
    users who like the same items together better than random vectors), reused when asked again."""
    from sklearn.decomposition import TruncatedSVD

    from benchmarks.profile_knowledge import probe, profile_store
    from recbole_llm4msr.knowledge.extract import check_store

    spec = make_spec(data_dir)
    source = check_store(store, spec)
    files = DatasetFiles.from_spec(spec)
    with pytest.raises(ValueError, match=rf"--dim 16: .*{source.dim}-d.*use --dim {source.dim}"):
        profile_store(source, files, 16, str(tmp_path / "cache"))
    dim = source.dim
    path, info = profile_store(source, files, dim, str(tmp_path / "cache"))
    made = check_store(path, spec)  # the data fingerprint is the source's: a run takes it as knowledge_store
    assert made.path != source.path and made.header["model"] == f"no-LLM-profile-svd{dim}" and info["dim"] == dim
    assert made.fingerprint["llm"] != source.fingerprint["llm"] and made.dim == dim
    assert made.ids("user") == source.ids("user") and made.ids("scenario") == source.ids("scenario")
    np.testing.assert_allclose(np.asarray(made.vectors("scenario"), dtype=np.float32),
                               np.asarray(source.vectors("scenario"), dtype=np.float32), rtol=1e-3)
    users = list(source.ids("user"))
    expected = TruncatedSVD(dim, random_state=0).fit_transform(
        profile_vectors(users, files.train_interactions(), files.item_texts()))
    got = np.asarray(made.vectors("user"), dtype=np.float32)
    np.testing.assert_allclose(np.abs(got), np.abs(expected), rtol=1e-3, atol=1e-3)  # SVD signs may flip
    again, info_again = profile_store(source, files, dim, str(tmp_path / "cache"))
    assert again == path and info_again == info and info["reference"] == "items+words"
    # a lesser reference (item ids alone) is its own store, of that profile's SVD
    ids_path, ids_info = profile_store(source, files, dim, str(tmp_path / "cache"), reference="items")
    ids_store = check_store(ids_path, spec)
    assert ids_path != path and ids_store.header["model"] == f"no-LLM-profile-items-svd{dim}"
    assert ids_info["reference"] == "items" and ids_store.fingerprint["llm"] != made.fingerprint["llm"]
    ids_expected = TruncatedSVD(dim, random_state=0).fit_transform(profile_vectors(users, files.train_interactions(), {}))
    np.testing.assert_allclose(np.abs(np.asarray(ids_store.vectors("user"), dtype=np.float32)), np.abs(ids_expected),
                               rtol=1e-3, atol=1e-3)
    # the bag of liked and disliked ids (session 32): its own store, of dislike_bags' SVD
    from benchmarks.profile_knowledge import dislike_bags
    dis_path, dis_info = profile_store(source, files, dim, str(tmp_path / "cache"), reference="items+dislikes")
    dis_store = check_store(dis_path, spec)
    assert dis_store.header["model"] == f"no-LLM-profile-items-dislikes-svd{dim}" and dis_path not in (path, ids_path)
    dis_expected = TruncatedSVD(dim, random_state=0).fit_transform(dislike_bags(users, files.train_interactions()))
    np.testing.assert_allclose(np.abs(np.asarray(dis_store.vectors("user"), dtype=np.float32)), np.abs(dis_expected),
                               rtol=1e-3, atol=1e-3)
    with pytest.raises(ValueError, match=r"--reference 'genres': one of items\+words, items, items\+categories"):
        profile_store(source, files, dim, str(tmp_path / "cache"), reference="genres")
    aucs = probe(path, files)
    assert set(aucs) == {"sparse profile", "svd none", "svd standardize", "svd whiten"}
    random = report.neighbour_scores(users, np.random.default_rng(0).standard_normal((len(users), dim)),
                                     files.train_interactions(), (valid := files.split_interactions("valid"))[
                                         valid["user"].isin(set(users))])
    assert aucs["svd none"] > report.auc(valid[valid["user"].isin(set(users))]["label"], random)


def test_the_hybrid_knowledge_control_keeps_the_profile_and_cuts_only_the_llm_half(data_dir, store, tmp_path):
    """benchmarks/hybrid_knowledge.py: [LLM block | profile block], each centred to unit mean norm; the control moves
    the LLM block to other users along one cycle (nobody keeps their own) and leaves the profile block with its user."""
    from benchmarks.hybrid_knowledge import derangement, hybrid_store, unit_block
    from benchmarks.profile_knowledge import probe, profile_store
    from recbole_llm4msr.knowledge.extract import check_store
    from recbole_llm4msr.knowledge.loader import apply_transform, population_transform

    src = derangement(50, 3)
    assert sorted(src) == list(range(50)) and not (src == np.arange(50)).any()
    seen, i = set(), 0  # one cycle through every row
    while i not in seen:
        seen.add(i)
        i = int(src[i])
    assert len(seen) == 50
    with pytest.raises(ValueError, match="at least two users"):
        derangement(1, 0)

    spec = make_spec(data_dir)
    source = check_store(store, spec)
    files = DatasetFiles.from_spec(spec)
    cache = str(tmp_path / "cache")
    profile = KnowledgeStore(profile_store(source, files, source.dim, cache)[0])
    path, info = hybrid_store(source, profile, cache, "whiten")
    ctrl, ctrl_info = hybrid_store(source, profile, cache, "whiten", shuffle_seed=0)
    made, control = check_store(path, spec), check_store(ctrl, spec)  # a run takes either as knowledge_store
    d = source.dim
    assert made.dim == control.dim == 2 * d and info["widths"] == [d, d] and path != ctrl
    assert len({made.fingerprint["llm"], control.fingerprint["llm"], source.fingerprint["llm"]}) == 3
    raw = np.asarray(source.vectors("user"), dtype=np.float32)
    llm = unit_block(apply_transform(raw, population_transform(raw, "whiten")))
    prof = unit_block(profile.vectors("user"))
    assert np.allclose((llm ** 2).sum(1).mean(), 1, atol=1e-4) and np.allclose(prof.mean(0), 0, atol=1e-5)
    got, shuffled = (np.asarray(s.vectors("user"), dtype=np.float32) for s in (made, control))
    np.testing.assert_allclose(got, np.concatenate([llm, prof], 1), atol=2e-3)  # the store holds fp16
    np.testing.assert_array_equal(shuffled[:, d:], got[:, d:])  # the profile block stays with its user
    np.testing.assert_array_equal(shuffled[:, :d], got[derangement(len(got), 0), :d])  # the LLM block moved ...
    assert not np.isclose(shuffled[:, :d], got[:, :d]).all(1).any()  # ... for every user
    scen = np.asarray(made.vectors("scenario"), dtype=np.float32)
    np.testing.assert_allclose(scen[:, :d], np.asarray(source.vectors("scenario"), dtype=np.float32), rtol=1e-3)
    assert not scen[:, d:].any()
    assert hybrid_store(source, profile, cache, "whiten") == (path, info)  # found again, not rebuilt
    assert set(probe(path, files, label="hybrid")) == {"sparse profile", "hybrid none", "hybrid standardize",
                                                        "hybrid whiten"}
    with pytest.raises(ValueError, match="--llm_norm must be one of none, standardize, whiten"):
        hybrid_store(source, profile, cache, "auto")
    half, half_info = hybrid_store(source, profile, cache, "whiten", block_dim=d // 2)  # as wide as one source
    narrow = check_store(half, spec)
    assert narrow.dim == 2 * (d // 2) and half_info["widths"] == [d // 2, d // 2] and half not in (path, ctrl)
    blocks = np.asarray(narrow.vectors("user"), dtype=np.float32)
    for block, full in ((blocks[:, :d // 2], llm), (blocks[:, d // 2:], prof)):
        assert np.allclose(block.mean(0), 0, atol=2e-3) and abs((block ** 2).sum(1).mean() - 1) < 1e-2
        # the leading principal components of the full block: the same span (projection residual ~ 0)
        basis = np.linalg.svd(full - full.mean(0), full_matrices=False)[2][:d // 2]
        coef, *_ = np.linalg.lstsq(block, full @ basis.T, rcond=None)
        assert np.abs(block @ coef - full @ basis.T).max() < 0.05 * np.abs(full @ basis.T).max()
    assert narrow.vectors("scenario").shape[1] == narrow.dim
    with pytest.raises(ValueError, match=f"--block_dim {d} must be between 1 and"):
        hybrid_store(source, profile, cache, "whiten", block_dim=d)
    from types import SimpleNamespace

    users = list(source.ids("user"))
    reordered = SimpleNamespace(path="P", ids=lambda kind: users[::-1], fingerprint=profile.fingerprint)
    with pytest.raises(ValueError, match="P does not hold the users of .* in the same order"):
        hybrid_store(source, reordered, cache)
    other_data = SimpleNamespace(path="P", ids=profile.ids, fingerprint=dict(profile.fingerprint, train_split="x"))
    with pytest.raises(ValueError, match=r"P was built on other data .*\(train_split differ\)"):
        hybrid_store(source, other_data, cache)


def test_the_hybrid_probe_scores_each_store_beside_the_profile_and_pairs_them(data_dir, tmp_path):
    """benchmarks/hybrid_probe.py: each store's users (under --llm_norm) as the LLM block of [LLM | profile SVD],
    both blocks as the hybrid store makes them; the probe alone and as a hybrid, paired differences with BH over the
    pairs named, pooling of several runs against one reference; bad labels and pairs are clear errors."""
    from benchmarks import hybrid_probe as hp
    from benchmarks.align_knowledge_words import normalise
    from benchmarks.hybrid_knowledge import unit_block
    from benchmarks.profile_knowledge import profile_store
    from recbole_llm4msr.knowledge.extract import build_knowledge, check_store
    from tests.knowledge_helpers import tiny_model_dir

    stores = []
    for seed in (0, 1):
        os.makedirs(tmp_path / f"m{seed}")
        model = tiny_model_dir(tmp_path / f"m{seed}", seed=seed)
        stores.append(build_knowledge(make_spec(data_dir, tmp_path / "k", llm=str(model), user_vector="items"),
                                      show_progress=False)["cache"])
    assert stores[0] != stores[1]
    spec = make_spec(data_dir)
    source = check_store(stores[0], spec)
    files = DatasetFiles.from_spec(spec)
    profile = profile_store(source, files, source.dim, str(tmp_path / "cache"))[0]
    result = tmp_path / "hybrid-probe.json"
    args = [f"--data_path={data_dir}", "--dataset=ml-100k-msr", f"--profile={profile}", f"--store=a={stores[0]}",
            f"--store=b={stores[1]}", f"--store=a2={stores[0]}", "--pair=a,b", "--pair=a2,b", "--pair=a,a2",
            "--pair=a,profile", "--pool=b", "--resamples=50", f"--out={result}"]
    out = hp.main(args)
    assert json.load(open(result)) == json.loads(json.dumps(out))
    assert out["users"] == 943 and out["rows"] > 0 and out["hybrid"]["a"] == out["hybrid"]["a2"]
    assert out["differences"]["a - a2"]["difference"] == 0  # the same store on the same rows
    assert set(out["differences"]) == {"a - b", "a2 - b", "a - a2", "a - profile"}
    assert all("p_bh" in d and d["p_bh"] >= d["p"] for d in out["differences"].values())
    assert out["pooled"]["runs"] == {"a": out["differences"]["a - b"]["difference"],
                                     "a2": out["differences"]["a2 - b"]["difference"]}
    # the hybrid's probe is the neighbour probe of [unit(whitened users) | unit(profile SVD)], recomputed here
    store, prof = KnowledgeStore(stores[0]), KnowledgeStore(profile)
    users = list(store.ids("user"))
    assert list(prof.ids("user")) == users
    llm = normalise(np.asarray(store.vectors("user"), np.float32), "whiten")
    x = np.concatenate([unit_block(llm), unit_block(np.asarray(prof.vectors("user"), np.float32))], 1)
    train, valid = files.train_interactions(), files.split_interactions("valid")
    known = valid[valid["user"].isin(set(users))]
    expected = report.auc(known["label"], report.neighbour_scores(users, x, train, known, 20))
    assert abs(out["hybrid"]["a"] - expected) < 2e-3  # the item means are recomputed, the store holds 16 bits
    assert abs(out["alone"]["a"] - report.auc(known["label"], report.neighbour_scores(users, llm, train, known, 20))) < 2e-3
    for bad, match in ((["--pair=a,zzz"], "unknown: \\['zzz'\\]"), (["--pair=a,a"], "two different labels"),
                       ([f"--store=profile={stores[0]}"], "reserved for the sparse profile"),
                       ([f"--store=a={stores[1]}"], "given twice"), (["--store=nolabel"], "write LABEL=PATH"),
                       (["--pool=zzz"], "no --pair X,zzz")):
        with pytest.raises(SystemExit, match=match):
            hp.main(args + bad)


def test_knowledge_references_table_keeps_other_datasets_and_plots_every_interval(tmp_path):
    from benchmarks.knowledge_references import FIELDS, _parse, write
    from benchmarks.knowledge_quality import read_rows, replaced

    def rows(dataset, shift):
        out = []
        for group in ("all", "1 of 3", "2 of 3", "3 of 3"):
            out.append({"dataset": dataset, "option": "minilm-items", "knowledge_norm": "none", "group": group,
                        "positives": "" if group == "all" else "0-9", "users": 10, "rows": 50, "knowledge": 0.69,
                        "random": 0.62, "items": 0.68, "items_categories": "", "items_all_words": 0.69,
                        "minus_items": f"{shift:+.4f} [-0.0010, +0.0030]", "minus_items_categories": "",
                        "minus_items_all_words": "+0.0000 [-0.0020, +0.0020]", "store": "s"})
        return out

    path = str(tmp_path / "knowledge-references.csv")
    write(path, rows("a", 0.001))
    write(path, replaced(path, rows("b", 0.002), lambda r: (r["dataset"], r["option"])))
    write(path, replaced(path, rows("a", 0.003), lambda r: (r["dataset"], r["option"])))  # a's rows replaced
    kept = read_rows(path)
    assert [r["dataset"] for r in kept] == ["b"] * 4 + ["a"] * 4 and list(kept[0]) == FIELDS
    assert kept[-1]["minus_items"].startswith("+0.0030")
    assert "| a | minilm-items (none) | 10 | 3 of 3 (0-9) |" in open(path[:-4] + ".md").read()
    assert os.path.getsize(path[:-4] + ".png") > 5000
    assert _parse("-0.0161 [-0.0443, +0.0178]") == (-0.0161, -0.0443, 0.0178) and _parse("") is None


def test_the_cluster_knowledge_is_a_bag_of_llm_item_categories_with_a_random_category_control(data_dir, tmp_path,
                                                                                                  caplog):
    """benchmarks/cluster_knowledge.py: a user = TF-IDF of the LLM-space k-means categories of their liked items,
    truncated SVD (zero-padded to the store's width when there are fewer categories); --random keeps the category
    sizes and cuts the link to the LLM's similarity; a store without item vectors is refused."""
    from sklearn.decomposition import TruncatedSVD

    from benchmarks.cluster_knowledge import cluster_bags, cluster_store, item_clusters
    from recbole_llm4msr.knowledge.extract import build_knowledge, check_store
    from tests.knowledge_helpers import tiny_llm

    spec = make_spec(data_dir, tmp_path / "kc", limit_users=120, max_prompt_tokens=4000, user_vector="items")
    source = check_store(build_knowledge(spec, llm_model=tiny_llm(), show_progress=False)["cache"], spec)
    files = DatasetFiles.from_spec(spec)
    path, info = cluster_store(source, files, 16, str(tmp_path / "out"))
    made = check_store(path, spec)  # a run takes it as knowledge_store
    assert made.dim == source.dim and made.ids("user") == source.ids("user") and info["clusters"] == 16
    category = item_clusters(source, 16)
    assert set(category) == set(map(str, source.ids("item"))) and set(category.values()) == set(range(16))
    users = list(source.ids("user"))
    sparse = cluster_bags(users, files.train_interactions(), category)
    expected = TruncatedSVD(min(source.dim, 15), random_state=0).fit_transform(sparse)
    got = np.asarray(made.vectors("user"), dtype=np.float32)
    np.testing.assert_allclose(np.abs(got[:, :expected.shape[1]]), np.abs(expected), rtol=1e-3, atol=1e-3)
    assert not got[:, expected.shape[1]:].any()  # the padding
    assert cluster_store(source, files, 16, str(tmp_path / "out")) == (path, info)  # found, not made again
    import sklearn
    assert info["sklearn"] == sklearn.__version__  # the key holds the recipe; the library is recorded and checked
    kept = json.load(open(os.path.join(path, "cluster-knowledge.json")))
    kept["info"]["sklearn"] = "0.0"
    with open(os.path.join(path, "cluster-knowledge.json"), "w") as f:
        json.dump(kept, f)
    with caplog.at_level(logging.WARNING, logger="profile_knowledge"):
        assert cluster_store(source, files, 16, str(tmp_path / "out"))[0] == path  # still reused, with a warning
    assert f"{path} was made with scikit-learn 0.0, this is {sklearn.__version__}" in caplog.text
    control, _ = cluster_store(source, files, 16, str(tmp_path / "out"), random=True)
    assert control != path and check_store(control, spec).header["model"].endswith("-random16-svd" + str(source.dim))
    shuffled = item_clusters(source, 16, random=True)
    assert sorted(np.bincount(list(shuffled.values()))) == sorted(np.bincount(list(category.values())))
    assert shuffled != category
    with pytest.raises(ValueError, match="--clusters 1: between 2 and the"):
        item_clusters(source, 1)
    prompt = FakeStore(users, got, tmp_path)
    prompt.header["kinds"] = {"user": len(users)}
    with pytest.raises(ValueError, match="holds no item vectors"):
        item_clusters(prompt, 16)


def test_the_cluster_sweep_sets_llm_categories_against_random_ones_and_the_default(data_dir, tmp_path):
    """benchmarks/cluster_knowledge.py --sweep: per K the LLM's and the random categories' stores, probed as the runs
    use them (the same AUC as profile_knowledge.probe's), differences consistent with the AUCs, the table merged
    with other datasets' rows; a bad --sweep value is refused before anything is built."""
    from benchmarks.cluster_knowledge import SWEEP_FIELDS, cluster_store, main, sweep, write_sweep
    from benchmarks.knowledge_quality import read_rows
    from benchmarks.profile_knowledge import probe, sparse_profile
    from recbole_llm4msr.atomic import atomic_write_csv
    from recbole_llm4msr.knowledge.extract import build_knowledge, check_store
    from tests.knowledge_helpers import tiny_llm

    spec = make_spec(data_dir, tmp_path / "kc", limit_users=120, max_prompt_tokens=4000, user_vector="items")
    source = check_store(build_knowledge(spec, llm_model=tiny_llm(), show_progress=False)["cache"], spec)
    files = DatasetFiles.from_spec(spec)
    profile = sparse_profile(source, files)
    rows = sweep(source, files, str(tmp_path / "out"), [4, 8], profile=profile)
    assert [r["clusters"] for r in rows] == [4, 8] and all(r["dataset"] == "ml-100k-msr" for r in rows)
    for r in rows:
        llm, _ = cluster_store(source, files, r["clusters"], str(tmp_path / "out"))
        control, _ = cluster_store(source, files, r["clusters"], str(tmp_path / "out"), random=True)
        assert (r["store"], r["random_store"]) == (os.path.basename(llm), os.path.basename(control))
        assert probe(llm, files, sparse=profile)["svd none"] == r["llm_categories"]
        assert probe(control, files, sparse=profile)["svd none"] == r["random_categories"]
        assert r["profile"] == probe(control, files, sparse=profile)["sparse profile"]
        for column, a, b in (("llm_minus_random", "llm_categories", "random_categories"),
                             ("llm_minus_default", "llm_categories", "default")):
            head, ci = r[column].split(" [")
            lo, hi = (float(v) for v in ci.rstrip("]").split(", "))
            assert abs(float(head) - (r[a] - r[b])) <= 2e-4 and lo <= hi
        assert r["default_norm"] in ("none", "standardize", "whiten") and set(r) == set(SWEEP_FIELDS)
    path = str(tmp_path / "sweep.csv")
    atomic_write_csv(path, [dict.fromkeys(SWEEP_FIELDS, "1") | {"dataset": "other", "default_norm": "none",
                                                                "profile": ""}], SWEEP_FIELDS)
    write_sweep(path, rows)
    write_sweep(path, rows[1:])  # a rerun replaces the dataset's rows and keeps the others
    kept = read_rows(path)
    assert [(r["dataset"], r["clusters"]) for r in kept] == [("other", "1"), ("ml-100k-msr", "8")]
    assert "| ml-100k-msr | 8 |" in open(path[:-4] + ".md").read()
    assert os.path.getsize(path[:-4] + ".png") > 5000
    with pytest.raises(SystemExit, match="comma-separated whole numbers"):
        main(["--dataset", "ml-100k-msr", "--data_path", data_dir, "--sweep", "4,many"])


def test_expanded_words_add_the_llms_nearest_words_to_each_item_with_another_items_words_as_control(data_dir,
                                                                                                      tmp_path):
    """benchmarks/expanded_words.py: words are encoded as the store encodes an item text; each item gets its m most
    similar words; the control hands every item another item's words (the same words in the same amounts); the
    ids + own words bag is the report's no-LLM profile; differences agree with the AUCs; the table merges by dataset;
    bad --m is refused."""
    from collections import Counter

    from benchmarks.expanded_words import (FIELDS, VARIANTS, item_tokens, measure, nearest_words, parse_ms,
                                           vocabulary, word_vectors, write)
    from benchmarks.knowledge_quality import read_rows
    from recbole_llm4msr.knowledge.extract import build_knowledge, check_store
    from tests.knowledge_helpers import tiny_llm

    llm = tiny_llm()
    spec = make_spec(data_dir, tmp_path / "kc", limit_users=120, max_prompt_tokens=4000, user_vector="items")
    source = check_store(build_knowledge(spec, llm_model=llm, show_progress=False)["cache"], spec)
    files = DatasetFiles.from_spec(spec)
    items, texts = list(source.ids("item")), files.item_texts()
    # a "word" that is an item's whole text is encoded to that item's stored vector (16-bit in the store)
    stored = np.asarray(source.vectors("item")[:3], dtype=np.float32)
    again = word_vectors(llm, [texts[i] for i in items[:3]], source.header)
    np.testing.assert_allclose(again, stored / np.linalg.norm(stored, axis=1, keepdims=True), atol=5e-3)
    # nearest words: the m most cosine-similar, nearest first; m >= the vocabulary gives every word
    rng = np.random.default_rng(1)
    x, w = rng.normal(size=(7, 5)).astype(np.float32), rng.normal(size=(11, 5)).astype(np.float32)
    w /= np.linalg.norm(w, axis=1, keepdims=True)
    sim = (x / np.linalg.norm(x, axis=1, keepdims=True)) @ w.T
    np.testing.assert_array_equal(nearest_words(x, w, 3, chunk=4), np.argsort(-sim, axis=1)[:, :3])
    assert sorted(nearest_words(x, w, 11)[0]) == list(range(11))
    words = vocabulary(items, texts)
    assert words == sorted(set(words)) and all(w == w.lower() and not w.isdigit() for w in words)
    top = nearest_words(np.asarray(source.vectors("item"), np.float32), word_vectors(llm, words, source.header), 2)
    tokens = item_tokens(items, texts, words, top)
    assert tokens["llm"][items[0]] == ["w_" + words[j] for j in top[0]]
    assert Counter(t for i in items for t in tokens["llm control"][i]) == Counter(
        t for i in items for t in tokens["llm"][i])
    assert sum(tokens["llm control"][i] != tokens["llm"][i] for i in items) > len(items) // 2
    assert tokens["ids+own+llm"][items[0]][0] == f"item_{items[0]}"

    rows = measure(source, files, llm, [1, 3], resamples=50)
    assert [(r["m"], r["variant"]) for r in rows] == [(m, v) for m in (1, 3) for v in VARIANTS]
    users = list(source.ids("user"))
    train, valid = files.train_interactions(), files.split_interactions("valid")
    known = valid[valid["user"].isin(set(users))]
    profile = report.auc(known["label"], report.neighbour_scores(
        users, profile_vectors(users, train, texts), train, known, 20))
    for r in rows:
        assert abs(r["profile"] - profile) < 2e-3 and set(r) == set(FIELDS)
        assert (r["control_auc"] is None) == ("llm" not in r["variant"])
        for column, other in (("minus_control", r["control_auc"]), ("minus_profile", r["profile"])):
            if r[column] is not None:
                assert abs(float(r[column].split(" [")[0]) - (r["auc"] - other)) <= 2e-4
    assert rows[3]["minus_profile"] is None and rows[3]["variant"] == "ids+own"
    path = str(tmp_path / "ew.csv")
    write(path, [dict(r, dataset="other") for r in rows[:2]])
    write(path, rows)
    write(path, rows[5:])  # a rerun replaces the dataset's rows, the other dataset's stay
    kept = read_rows(path)
    assert [r["dataset"] for r in kept] == ["other"] * 2 + ["ml-100k-msr"] * 5
    assert "| ml-100k-msr | 3 | ids+own+llm |" in open(path[:-4] + ".md").read()
    with pytest.raises(ValueError, match=f"--m {len(words) + 1}: between 1 and the {len(words)} words"):
        measure(source, files, llm, [len(words) + 1])
    for bad in ("1,x", ","):
        with pytest.raises(SystemExit, match="--m"):
            parse_ms(bad)


def test_the_fold_probe_scores_each_training_fold_from_knowledge_and_bags_rebuilt_without_it(data_dir, tmp_path):
    """benchmarks/fold_probe.py: every user's training rows dealt evenly into folds (seeded); a fold's rows scored
    from the other folds only, with the user vectors rebuilt as the mean of the other folds' liked items and the
    bags from the other folds' positives; the validation row is the report's probe; differences agree with the
    AUCs; the table merges by dataset; a store of another recipe and fewer than 2 folds are refused."""
    from benchmarks.fold_probe import FIELDS, fold_scores, measure, main, user_folds, with_correction, write
    from recbole_llm4msr.compare import corrected
    from benchmarks.knowledge_quality import read_rows
    from recbole_llm4msr.knowledge.extract import build_knowledge, check_store, user_means
    from tests.knowledge_helpers import tiny_llm

    spec = make_spec(data_dir, tmp_path / "kc", limit_users=120, max_prompt_tokens=4000, user_vector="items")
    source = check_store(build_knowledge(spec, llm_model=tiny_llm(), show_progress=False)["cache"], spec)
    files = DatasetFiles.from_spec(spec)
    train = files.train_interactions().reset_index(drop=True)
    fold = user_folds(train, 3, seed=0)
    assert set(fold) == {0, 1, 2} and np.array_equal(fold, user_folds(train, 3, seed=0))
    assert not np.array_equal(fold, user_folds(train, 3, seed=1))
    per_user = pd.crosstab(train["user"], fold)
    assert ((per_user.max(axis=1) - per_user.min(axis=1)) <= 1).all()  # every user spread evenly
    with pytest.raises(ValueError, match="--folds 1: at least 2"):
        user_folds(train, 1)

    rows, scores = fold_scores(source, files, "none", folds=2, k=20, seed=0)
    fold = user_folds(rows, 2, seed=0)
    held, rest = rows[fold == 0], rows[fold != 0]
    users = list(source.ids("user"))
    pos = rest[rest["label"] > 0.5]
    positives = {u: [str(i) for i in pos[pos["user"] == u]["item"]] for u in users}
    vectors = user_means(users, positives, list(source.ids("item")), np.asarray(source.vectors("item"), np.float32))[0]
    np.testing.assert_allclose(scores["knowledge"][fold == 0],
                               report.neighbour_scores(users, vectors, rest, held, 20), atol=1e-6)
    np.testing.assert_allclose(scores["items_all_words"][fold == 0], report.neighbour_scores(
        users, profile_vectors(users, rest, files.item_texts()), rest, held, 20), atol=1e-6)
    assert set(scores) >= {"knowledge", "random", "items", "items_all_words"}

    everyone = measure(source, files, folds=2, resamples=50)
    out = [r for r in everyone if r["group"] == "all"]
    assert [r["probe"] for r in out] == ["validation", "training 2-fold"] and all(
        set(r) == {f for f in FIELDS if "dislikes" not in f} for r in everyone)  # --dislikes adds the rest
    for probe, whole in zip(("validation", "training 2-fold"), out):  # activity thirds partition the probe's rows
        parts = [r for r in everyone if r["probe"] == probe and r["group"] != "all"]
        assert [r["group"][:6] for r in parts] == ["1 of 3", "2 of 3", "3 of 3"]
        assert sum(r["rows"] for r in parts) == whole["rows"] and sum(r["users"] for r in parts) == whole["users"]
    valid = files.split_interactions("valid")
    known = valid[valid["user"].isin(set(users))]
    norm = out[0]["knowledge_norm"]
    store_vectors = np.asarray(source.vectors("user"), np.float32)
    assert out[0]["knowledge"] == report.auc(known["label"], report.norm_scores(source, users, store_vectors,
                                                                                files.train_interactions(), known,
                                                                                20, norm))
    assert out[0]["items_all_words"] == report.auc(known["label"], report.neighbour_scores(
        users, profile_vectors(users, files.train_interactions(), files.item_texts()), files.train_interactions(),
        known, 20))
    assert out[1]["rows"] == len(rows)
    assert all(1 / 50 <= r[f"p_bh_{n}"] <= 1 for r in everyone for n in ("items", "items_categories", "items_all_words"))
    # one Benjamini-Hochberg family over every knowledge − reference p-value of the table
    raw = [{"p_bh_items": 0.01, "p_bh_items_categories": 0.04, "p_bh_items_all_words": None}, {"p_bh_items": 0.03}]
    fixed = with_correction([dict(r) for r in raw])
    assert [fixed[0]["p_bh_items"], fixed[0]["p_bh_items_categories"], fixed[1]["p_bh_items"]] == [
        round(p, 4) for p in corrected([0.01, 0.04, 0.03])] and fixed[0]["p_bh_items_all_words"] is None
    for r in out:
        for name in ("random", "items", "items_all_words"):
            assert abs(float(r[f"minus_{name}"].split(" [")[0]) - (r["knowledge"] - r[name])) <= 2e-4
    path = str(tmp_path / "fp.csv")
    write(path, [dict(r, dataset="other") for r in out])
    write(path, everyone)
    write(path, out[1:])
    assert [(r["dataset"], r["probe"]) for r in read_rows(path)] == [("other", "validation"),
                                                                      ("other", "training 2-fold"),
                                                                      ("ml-100k-msr", "training 2-fold")]
    table = open(path[:-4] + ".md").read()
    assert f"| ml-100k-msr | training 2-fold | {out[1]['users']} |" in table
    assert f"{out[1]['minus_items_all_words']} (p_bh {out[1]['p_bh_items_all_words']})" in table
    prompt = FakeStore(users, store_vectors, tmp_path)
    with pytest.raises(ValueError, match="rebuilds user vectors as the mean of their liked items"):
        fold_scores(prompt, files, "none")
    with pytest.raises(SystemExit, match="--folds 1"):
        main(["--dataset", "ml-100k-msr", "--data_path", data_dir, "--folds", "1"])


def test_the_fold_probes_dislike_options_read_the_disliked_items_as_their_own_tokens_and_vectors(data_dir, tmp_path):
    """benchmarks/fold_probe.py --dislikes: an item the store holds no vector for is encoded as the store encodes
    item texts (a stored item re-encoded gives its stored vector); the bag keeps a liked and a disliked item apart;
    the knowledge + dislikes vector is the two centred means side by side; each fold's dislike options are rebuilt
    without it; their tests are a BH family of their own (the other p-values do not move); a second table."""
    from benchmarks.fold_probe import (ItemVectors, dislike_bags, dislike_vectors, fold_scores, measure, user_folds,
                                       write)
    from recbole_llm4msr.knowledge.extract import build_knowledge, check_store, user_means
    from sklearn.metrics.pairwise import cosine_similarity
    from tests.knowledge_helpers import tiny_llm

    spec = make_spec(data_dir, tmp_path / "kd", limit_users=120, max_prompt_tokens=4000, user_vector="items")
    llm = tiny_llm()
    source = check_store(build_knowledge(spec, llm_model=llm, show_progress=False)["cache"], spec)
    files = DatasetFiles.from_spec(spec)
    loads = []
    items = ItemVectors(source, files, lambda: loads.append(1) or llm)
    stored = items.vectors[:2].copy()
    gone = items.ids[:2]
    items.ids, items.vectors = items.ids[2:], items.vectors[2:]
    assert items.cover(gone + items.ids[:3]) == 2 and loads == [1]  # only the two without a vector
    again = {i: v for i, v in zip(items.ids, items.vectors)}
    np.testing.assert_allclose(np.stack([again[i] for i in gone]), stored, atol=5e-3)
    assert items.cover(gone) == 0 and loads == [1]
    with pytest.raises(ValueError, match="1 disliked item.*no model was given"):
        ItemVectors(source, files).cover(["no-such-item"])

    train = files.train_interactions().reset_index(drop=True)
    items.cover(train["item"])
    users = list(source.ids("user"))
    toy = pd.DataFrame({"user": ["a", "b", "c"], "item": ["7", "7", "7"], "label": [1.0, 0.0, 0.0]})
    sim = cosine_similarity(dislike_bags(["a", "b", "c"], toy))
    assert sim[0, 1] == 0 and sim[1, 2] > 0.99  # liked 7 and disliked 7 share nothing; two dislikes of 7 do
    halves = []
    for liked in (True, False):
        part = train[(train["label"] > 0.5) == liked]
        per_user = {u: [str(i) for i in part[part["user"] == u]["item"]] for u in users}
        v = user_means(users, per_user, items.ids, items.vectors)[0]
        halves.append(v - v.mean(0))
    np.testing.assert_allclose(dislike_vectors(users, train, items), np.hstack(halves), atol=1e-5)

    rows, scores = fold_scores(source, files, "none", folds=2, k=20, seed=0, items=items)
    fold = user_folds(rows, 2, seed=0)
    held, rest = rows[fold == 1], rows[fold != 1]
    np.testing.assert_allclose(scores["knowledge_dislikes"][fold == 1], report.neighbour_scores(
        users, dislike_vectors(users, rest, items), rest, held, 20), atol=1e-6)
    np.testing.assert_allclose(scores["items_dislikes"][fold == 1], report.neighbour_scores(
        users, dislike_bags(users, rest), rest, held, 20), atol=1e-6)

    plain = measure(source, files, folds=2, resamples=50)
    both = measure(source, files, folds=2, resamples=50, items=items)
    for a, b in zip(plain, both):
        assert all(a[key] == b[key] for key in a if not key.startswith(("knowledge_dislikes", "items_dislikes")))
        assert b["items_dislikes"] is not None and b["knowledge_dislikes"] is not None
        for column, (x, y) in (("minus_items_dislikes", ("knowledge", "items_dislikes")),
                               ("dislikes_minus_knowledge", ("knowledge_dislikes", "knowledge")),
                               ("dislikes_minus_items_dislikes", ("knowledge_dislikes", "items_dislikes"))):
            assert abs(float(b[column].split(" [")[0]) - (b[x] - b[y])) <= 2e-4
            assert 1 / 50 <= b[f"p_bh_{column}"] <= 1
    path = str(tmp_path / "fp.csv")
    write(path, plain)
    assert not os.path.exists(path[:-4] + "-dislikes.md")
    write(path, both)
    table = open(path[:-4] + "-dislikes.md").read()
    assert f"| {both[0]['items_dislikes']} | {both[0]['knowledge_dislikes']} | {both[0]['minus_items_dislikes']} " \
           f"(p_bh {both[0]['p_bh_minus_items_dislikes']}) |" in table


def test_replaced_in_place_keeps_a_remeasured_groups_place_and_appends_new_groups(tmp_path):
    """benchmarks.knowledge_quality.replaced_in_place (the results tables' merge): a group's rows are replaced where
    they stood, rows of other keys in the group stay, a new group goes last."""
    from benchmarks.knowledge_quality import replaced_in_place
    from recbole_llm4msr.atomic import atomic_write_csv

    path = str(tmp_path / "t.csv")
    atomic_write_csv(path, [{"dataset": d, "option": o, "v": "old"} for d, o in
                            (("a", "x"), ("a", "y"), ("b", "x"), ("c", "x"))], ["dataset", "option", "v"])
    rows = replaced_in_place(path, [{"dataset": "a", "option": "x", "v": "new"}, {"dataset": "d", "option": "x",
                                                                                    "v": "new"}],
                             lambda r: (r["dataset"], r["option"]), lambda r: r["dataset"])
    assert [(r["dataset"], r["option"], r["v"]) for r in rows] == [
        ("a", "y", "old"), ("a", "x", "new"), ("b", "x", "old"), ("c", "x", "old"), ("d", "x", "new")]
    by_dataset = replaced_in_place(path, [{"dataset": "b", "option": "z", "v": "new"}], lambda r: r["dataset"])
    assert [(r["dataset"], r["option"]) for r in by_dataset] == [("a", "x"), ("a", "y"), ("b", "z"), ("c", "x")]
