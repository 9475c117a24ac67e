"""No leakage between splits or into prompts: repeated pairs stay in one part, implicit feedback gets honest
negatives, time-ordered splits, and prompts use the dataset's own positive rule."""
import json
import os

import numpy as np
import pandas as pd
import pytest

from dataset_converters import csv as csv_conv
from dataset_converters import writer
from dataset_converters.writer import ConversionError, pair_groups, pair_overlap, scenario_split
from tests.conftest import shared_file


def read(path):
    df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    df.columns = [c.split(":")[0] for c in df.columns]
    return df


def logged_three_times(n_pairs=3000, seed=0):
    rng = np.random.default_rng(seed)
    base = pd.DataFrame({"user_id": rng.integers(0, 300, n_pairs).astype(str),
                         "item_id": np.arange(n_pairs).astype(str),
                         "label": rng.integers(0, 2, n_pairs).astype(float),
                         "scenario": np.where(rng.random(n_pairs) < 0.5, "a", "b")})
    return pd.concat([base] * 3, ignore_index=True)


def test_repeated_pairs_never_straddle_the_split(tmp_path):
    inter = logged_three_times()
    groups = pair_groups(inter, "user_id", "item_id", "scenario")
    codes = inter["scenario"].astype("category").cat.codes.to_numpy()
    by_row = scenario_split(codes, seed=1)  # what the writer did before: rows shuffled one by one
    leaked = pair_overlap(groups, by_row)
    assert leaked["train_test"] > 0.9 * len(set(groups[by_row[2]]))  # almost every test pair was also trained on
    path, stats = writer.write_dataset(str(tmp_path), "rep", inter, {"user_id": "token", "item_id": "token",
                                                                      "label": "float", "scenario": "token"})
    assert stats["splits"]["pair_overlap"] == {"train_valid": 0, "train_test": 0, "valid_test": 0}
    assert stats["splits"]["repeated_pairs"] == 2 * 3000
    keys = [set(map(tuple, read(os.path.join(path, f"rep.{p}.inter"))[["user_id", "item_id", "scenario"]].values))
            for p in ("train", "valid", "test")]
    assert not (keys[0] & keys[1] or keys[0] & keys[2] or keys[1] & keys[2])
    assert json.load(open(os.path.join(path, "rep.stats.json")))["splits"]["pair_overlap"]["train_test"] == 0


def test_a_split_without_repeats_is_unchanged():
    """Grouping by pair does not move a single row of data without repeats (ml-100k-msr keeps its split)."""
    codes = np.random.default_rng(3).integers(0, 3, 5000)
    plain = scenario_split(codes, seed=2020)
    grouped = scenario_split(codes, seed=2020, groups=np.arange(5000))
    assert all((a == b).all() for a, b in zip(plain, grouped))


def test_builtin_converters_report_zero_overlap(data_dir):
    stats = json.load(open(os.path.join(data_dir, "ml-100k-msr", "ml-100k-msr.stats.json")))
    assert stats["splits"]["pair_overlap"] == {"train_valid": 0, "train_test": 0, "valid_test": 0}
    assert stats["splits"]["method"] == "random"


def test_csv_with_labels_reports_zero_overlap(tmp_path):
    path, stats = csv_conv.convert(shared_file("douban_sample.csv"), str(tmp_path), "douban-sample", "user_id",
                                   "item_id", "rating", "domain")
    assert set(stats["splits"]["pair_overlap"].values()) == {0}


def implicit_csv(tmp_path, rows):
    p = tmp_path / "buys.csv"
    p.write_text("u,i,s,pos\n" + "\n".join(rows) + "\n")
    return str(p)


def purchases(users=30, per_user=8, items=100):
    rng = np.random.default_rng(7)
    rows = []
    for u in range(users):
        for k, i in enumerate(rng.choice(items, per_user, replace=False)):
            rows.append(f"u{u},{'x' if i < items // 2 else 'y'}{i},{'A' if i < items // 2 else 'B'},{k}")
    return rows


def test_implicit_feedback_gets_honest_negatives(tmp_path):
    rows = purchases()
    src = implicit_csv(tmp_path, rows + [rows[0].rsplit(",", 1)[0] + ",99"])  # one repeated purchase, later
    with pytest.raises(ConversionError, match="pass --negatives K"):
        csv_conv.convert(src, str(tmp_path / "o"), "buys", "u", "i", None, "s")
    path, stats = csv_conv.convert(src, str(tmp_path / "o"), "buys", "u", "i", None, "s", negatives=2,
                                   order_col="pos")
    note = stats["notes"]["implicit_feedback"]
    assert note["positives"] == len(rows) and note["repeated_positives_dropped"] == 1
    assert note["negatives"] == 2 * len(rows) and note["positives_short_of_negatives"] == 0
    assert note["negatives_per_positive"] == 2 and note["negative_seed"] == 2020
    inter = read(os.path.join(path, "buys.inter"))
    pos, neg = inter[inter["label"] == "1.0"], inter[inter["label"] == "0.0"]
    bought = pos.groupby("user_id")["item_id"].agg(set)
    scen_items = pos.groupby("scenario")["item_id"].agg(set)
    for r in neg.itertuples():
        assert r.item_id not in bought[r.user_id]  # never a positive of the user
        assert r.item_id in scen_items[r.scenario]  # an item of the same scenario
    assert not neg.duplicated(["user_id", "item_id", "scenario"]).any()
    assert set(stats["splits"]["pair_overlap"].values()) == {0}
    again, _ = csv_conv.convert(src, str(tmp_path / "o2"), "buys", "u", "i", None, "s", negatives=2, order_col="pos")
    assert read(os.path.join(again, "buys.inter")).equals(inter)  # seeded


def test_time_split_puts_each_users_last_purchases_in_test(tmp_path):
    src = implicit_csv(tmp_path, purchases(per_user=12))
    path, stats = csv_conv.convert(src, str(tmp_path / "o"), "buys", "u", "i", None, "s", negatives=1,
                                   order_col="pos", split="time")
    assert stats["splits"]["method"] == "time"
    parts = {p: read(os.path.join(path, f"buys.{p}.inter")) for p in ("train", "valid", "test")}
    for df in parts.values():
        df["t"] = df["timestamp"].astype(float)
    for (user, scen), test in parts["test"].groupby(["user_id", "scenario"]):
        train = parts["train"][(parts["train"]["user_id"] == user) & (parts["train"]["scenario"] == scen)]
        valid = parts["valid"][(parts["valid"]["user_id"] == user) & (parts["valid"]["scenario"] == scen)]
        assert train["t"].max() < test["t"].min()  # the future is never trained on
        if len(valid):
            assert train["t"].max() < valid["t"].min() <= valid["t"].max() < test["t"].min()
    with pytest.raises(ConversionError, match="--split time needs --order_col"):
        csv_conv.convert(src, str(tmp_path / "o3"), "buys", "u", "i", None, "s", negatives=1, split="time")


def test_amazon_art_office_recipe(tmp_path):
    shared_file("amazon_art_office.csv")
    from dataset_converters import amazon_art_office

    path, stats = amazon_art_office.convert(str(tmp_path))
    assert set(stats["scenarios"]) == {"arts", "office"}
    assert stats["scenarios"]["arts"]["users"] == stats["scenarios"]["office"]["users"] == 9577
    note = stats["notes"]["implicit_feedback"]
    assert note["repeated_positives_dropped"] == 1880 and note["positives"] == 208541 - 1880
    assert note["negatives"] == note["positives"] and note["positives_short_of_negatives"] == 0
    assert stats["splits"]["method"] == "time" and set(stats["splits"]["pair_overlap"].values()) == {0}
    assert stats["overall"]["items"] > 34000
    config = open(os.path.join(path, "amazon-art-office.yaml")).read()
    assert "item_text_fields:\n- title\n- categories" in config
    item = read(os.path.join(path, "amazon-art-office.item"))
    assert set(item.columns) == {"item_id", "title", "categories"}


def test_prompts_use_the_datasets_positive_rule(tmp_path):
    """A dataset binarised by RecBole's threshold (label = rating >= 4): a 3-star item is no positive."""
    from tests.knowledge_helpers import make_spec

    from recbole_llm4msr.knowledge.files import DatasetFiles
    from recbole_llm4msr.knowledge.prompts import PromptBuilder

    folder = tmp_path / "rated"
    folder.mkdir()
    rows = [("u1", "i1", 5, "a"), ("u1", "i2", 3, "a"), ("u1", "i3", 4, "b"), ("u2", "i2", 1, "a")]
    (folder / "rated.train.inter").write_text("user_id:token\titem_id:token\trating:float\tscenario:token\n" + "".join(
        f"{u}\t{i}\t{r}\t{s}\n" for u, i, r, s in rows))
    (folder / "rated.item").write_text("item_id:token\ttitle:token_seq\ni1\tAlpha\ni2\tBravo\ni3\tCharlie\n")
    (folder / "rated.yaml").write_text("threshold: {rating: 4}\nitem_text_fields: [title]\n")
    spec = make_spec(tmp_path, dataset="rated")
    histories = PromptBuilder(DatasetFiles.from_spec(spec)).user_histories()
    assert histories["u1"] == {"a": ["Alpha"], "b": ["Charlie"]} and histories["u2"] == {}
    files = DatasetFiles.from_spec(spec)
    assert files.positive_rule() == ("rating", ">=", 4.0)
