"""KuaiSAR and multi-scenario Amazon converters, on fixture files in the exact real formats."""
import csv
import gzip
import json
import os
import zipfile

import pandas as pd
import pytest

from dataset_converters import amazon, kuaisar
from dataset_converters.writer import ConversionError

REC_HEADER = ["user_id", "item_id", "duration_ms", "playing_time", "timestamp", "forward", "like", "follow",
              "search_item_related", "search", "click", "time"]
SRC_HEADER = ["keyword", "item_id", "click_cnt", "search_session_id", "item_type", "user_id",
              "search_session_timestamp", "search_source", "search_session_time"]
ITEM_HEADER = ["item_id", "caption", "author_id", "item_type", "upload_time", "upload_type",
               "first_level_category_id", "first_level_category_name", "first_level_category_name_en",
               "second_level_category_id", "second_level_category_name", "second_level_category_name_en",
               "third_level_category_id", "third_level_category_name", "third_level_category_name_en"]

REC = [  # user, item, click
    (1, 100, 1), (1, 101, 0), (2, 100, 1), (2, 102, 1), (3, 103, 0), (3, 100, 0), (4, 101, 1), (4, 104, 1),
    (5, 100, 0), (5, 105, 1), (6, 102, 0), (6, 103, 1),
]
SRC = [  # user, item, click_cnt
    (1, 200, 2), (1, 100, 0), (2, 201, 0), (3, 200, 1), (4, 202, 0), (5, 201, 3), (6, 200, 0), (6, 203, 1),
    (7, 204, 0), (7, 200, 1),
]


def write_kuaisar(folder, rec=REC, src=SRC, level_col="reco_active_level", drop=None):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "rec_inter.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(REC_HEADER)
        for k, (u, i, c) in enumerate(rec):
            w.writerow([u, i, 12000, 3400 + k, 1684742000000.0 + k * 1000, 0, 0, 0, 0, 0, c, "2023-05-22 15:53:20"])
    with open(os.path.join(folder, "src_inter.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(SRC_HEADER)
        for k, (u, i, c) in enumerate(src):
            w.writerow(["[20, 34, 3]", i, c, 900 + k, "VIDEO", u, 1684743000000 + k, "USER_INPUT", "2023-05-22"])
    with open(os.path.join(folder, "user_features.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["user_id", "search_active_level", level_col, "onehot_feat1", "onehot_feat2"])
        for u in range(1, 9):
            w.writerow([u, u % 3, (u + 1) % 4, u % 3, u % 8])
    with open(os.path.join(folder, "item_features.csv"), "w", newline="") as f:
        w = csv.writer(f)  # QUOTE_MINIMAL: captions with commas / newlines are quoted, as in the real file
        w.writerow(ITEM_HEADER)
        for i in list(range(100, 106)) + list(range(200, 205)) + [999]:
            caption = "[" + ", ".join(str(t) for t in range(i % 7 + 3)) + "]" + ("\nline two, quoted" if i == 101 else "")
            first = ("Food", "美食") if i % 2 else ("Sports", "体育")
            second = ("Home Cooking", "家常菜") if i % 3 else ("空", "空")
            w.writerow([i, caption * (50 if i == 102 else 1), 7000 + i, "NORMAL", "2023-05-01", "UPLOAD",
                        i % 2, first[1], first[0], 10 + i % 3, second[1], second[0] if second[0] != "空" else "empty",
                        -124, "空", "empty"])
    if drop:
        os.remove(os.path.join(folder, drop))
    return folder


def zip_folder(folder, zip_path, inner="KuaiSAR_final"):
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as z:
        for name in os.listdir(folder):
            z.write(os.path.join(folder, name), f"{inner}/{name}")
    return zip_path


def read(path):
    df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    df.columns = [c.split(":")[0] for c in df.columns]
    return df


@pytest.mark.parametrize("form", ["zip", "folder", "inner-folder"])
def test_kuaisar_counts(tmp_path, form):
    raw = write_kuaisar(str(tmp_path / "raw" / "KuaiSAR_final"))
    source = {"zip": zip_folder(raw, str(tmp_path / "KuaiSAR.zip")), "folder": str(tmp_path / "raw"),
              "inner-folder": raw}[form]
    path, stats = kuaisar.convert(source, str(tmp_path / "out"), "kuaisar-small")
    rec, src = stats["scenarios"]["rec"], stats["scenarios"]["search"]
    assert (rec["interactions"], rec["positives"], rec["users"], rec["items"]) == (12, 7, 6, 6)
    assert (src["interactions"], src["positives"], src["users"], src["items"]) == (10, 5, 7, 6)
    assert stats["overall"]["users"] == 7 and stats["overall"]["items"] == 11
    assert set(stats["splits"]["pair_overlap"].values()) == {0}  # repeated shows of one item stay in one part
    assert json.load(open(os.path.join(path, "kuaisar-small.stats.json")))["scenarios"]["search"]["positives"] == 5
    users = read(os.path.join(path, "kuaisar-small.user"))
    assert list(users.columns) == kuaisar.USER_COLS and len(users) == 7  # only users that interacted
    items = read(os.path.join(path, "kuaisar-small.item"))
    assert len(items) == 11 and "999" not in set(items["item_id"])
    cat = dict(zip(items["item_id"], items["category"]))
    assert cat["101"] == "Food Home_Cooking" and cat["102"] == "Sports" and cat["105"] == "Food"  # "empty" levels dropped


def test_kuaisar_accepts_rec_active_level(tmp_path):
    raw = write_kuaisar(str(tmp_path / "raw"), level_col="rec_active_level")
    path, _ = kuaisar.convert(raw, str(tmp_path / "out"), "k")
    assert "rec_active_level" in read(os.path.join(path, "k.user")).columns


def test_kuaisar_errors(tmp_path):
    with pytest.raises(ConversionError, match="missing src_inter.csv"):
        kuaisar.convert(write_kuaisar(str(tmp_path / "a"), drop="src_inter.csv"), str(tmp_path / "o"), "k")
    bad = write_kuaisar(str(tmp_path / "b"))
    df = pd.read_csv(os.path.join(bad, "rec_inter.csv")).drop(columns=["click"])
    df.to_csv(os.path.join(bad, "rec_inter.csv"), index=False)
    with pytest.raises(ConversionError, match=r"rec_inter.csv: column\(s\) \['click'\] missing"):
        kuaisar.convert(bad, str(tmp_path / "o"), "k")
    with pytest.raises(ConversionError, match="src_inter.csv: no interactions; scenario 'search' would be empty"):
        kuaisar.convert(write_kuaisar(str(tmp_path / "c"), src=[]), str(tmp_path / "o"), "k")
    with pytest.raises(ConversionError, match="neither a zip file nor a folder"):
        kuaisar.convert(str(tmp_path / "nothing.zip"), str(tmp_path / "o"), "k")


# ------------------------------------------------------------------------------------------------ Amazon
def _write(path, lines, gz):
    opener = gzip.open if gz else open
    with opener(path, "wt", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return path


def amazon_2014(tmp_path):
    """Two categories, 2014 format: JSON reviews, Python-literal meta (single quotes), gzipped."""
    files = []
    data = {"Books": [("A1", "b1", 5.0), ("A1", "b2", 2.0), ("A2", "b1", 4.0), ("A3", "b3", 3.0)],
            "Movies_and_TV": [("A1", "m1", 4.0), ("A2", "m2", 5.0), ("A4", "m1", 1.0)]}
    for cat, rows in data.items():
        reviews = [json.dumps({"reviewerID": u, "asin": a, "reviewerName": "x", "helpful": [0, 0], "reviewText": "t",
                               "overall": o, "summary": "s", "unixReviewTime": 1400000000 + k,
                               "reviewTime": "05 13, 2014"}) for k, (u, a, o) in enumerate(rows)]
        if cat == "Books":
            reviews.append('{"reviewerID": "A9", "asin": "b9", "overall": 5.0')  # truncated line: malformed
        r = _write(str(tmp_path / f"reviews_{cat}_5.json.gz"), reviews, gz=True)
        meta = [repr({"asin": a, "title": f"Title of {a}", "price": 9.99, "salesRank": {cat: 5},
                      "categories": [[cat, f"Leaf {cat}"]], "related": {"also_bought": ["z"]}})
                for a in sorted({a for _, a, _ in rows}) if a != "b3"]  # b3 has no meta
        m = _write(str(tmp_path / f"meta_{cat}.json.gz"), meta, gz=True)
        files.append((r, m))
    return files


def test_amazon_2014_format(tmp_path):
    files = amazon_2014(tmp_path)
    path, stats = amazon.convert([f[0] for f in files], [f[1] for f in files], str(tmp_path / "out"), "amz")
    assert set(stats["scenarios"]) == {"Books", "Movies_and_TV"}
    assert (stats["scenarios"]["Books"]["interactions"], stats["scenarios"]["Books"]["positives"]) == (4, 2)
    assert (stats["scenarios"]["Movies_and_TV"]["interactions"], stats["scenarios"]["Movies_and_TV"]["positives"]) == (3, 2)
    assert set(stats["splits"]["pair_overlap"].values()) == {0}
    assert stats["notes"]["malformed_lines"] == {"reviews_Books_5.json.gz": 1, "reviews_Movies_and_TV_5.json.gz": 0,
                                                 "meta_Books.json.gz": 0, "meta_Movies_and_TV.json.gz": 0}
    assert stats["notes"]["items_without_meta"] == 1
    items = read(os.path.join(path, "amz.item"))
    row = items[items["item_id"] == "b1"].iloc[0]
    assert row["title"] == "Title of b1" and row["category"] == "Leaf_Books"
    assert items[items["item_id"] == "b3"].iloc[0]["title"] == "b3"  # no meta: the asin stands in
    common, cstats = amazon.convert([f[0] for f in files], [f[1] for f in files], str(tmp_path / "out"), "amz-common",
                                    common_users=True)
    assert cstats["overall"]["users"] == 2  # A1 and A2 review in both categories
    named, nstats = amazon.convert([f[0] for f in files], [f[1] for f in files], str(tmp_path / "out"), "amz-named",
                                   scenario_names=["books", "movies"], label_threshold=4.0)
    assert set(nstats["scenarios"]) == {"books", "movies"} and nstats["scenarios"]["books"]["positives"] == 1


def test_amazon_2018_format_and_duplicate_meta(tmp_path):
    reviews = _write(str(tmp_path / "Toys_and_Games_5.json"), [json.dumps(
        {"overall": o, "verified": True, "reviewTime": "01 1, 2018", "reviewerID": u, "asin": a,
         "style": {"Size:": " Large"}, "reviewerName": "n", "reviewText": "t", "summary": "s",
         "unixReviewTime": 1514764800 + k, "vote": "2"}) for k, (u, a, o) in
        enumerate([("U1", "t1", 5.0), ("U2", "t1", 3.0), ("U2", "t2", 4.0), ("U3", "t3", 5.0)])], gz=False)
    meta = _write(str(tmp_path / "meta_Toys_and_Games.json.gz"), [json.dumps(
        {"asin": a, "title": t, "brand": "b", "category": ["Toys & Games", "Puzzles", leaf], "main_cat": "Toys",
         "price": "$7.86", "description": [], "feature": [], "also_buy": [], "rank": "1"}) for a, t, leaf in
        [("t1", "Jigsaw", "Jigsaw Puzzles"), ("t1", "Jigsaw again", "x"), ("t2", "Cube", "Brain Teasers"),
         ("t3", "Ball", "Balls")]], gz=True)
    second = _write(str(tmp_path / "Games_5.json"), [json.dumps(
        {"overall": 5.0, "reviewerID": "U1", "asin": "g1", "unixReviewTime": 1}),
        json.dumps({"overall": 2.0, "reviewerID": "U3", "asin": "g1", "unixReviewTime": 2})], gz=False)
    meta2 = _write(str(tmp_path / "meta_Games.json"), [json.dumps({"asin": "g1", "title": "Game", "category": ["G"]})],
                   gz=False)
    path, stats = amazon.convert([reviews, second], [meta, meta2], str(tmp_path / "out"), "amz18")
    assert stats["scenarios"]["Toys_and_Games"]["interactions"] == 4
    assert stats["scenarios"]["Toys_and_Games"]["positives"] == 3
    assert set(stats["splits"]["pair_overlap"].values()) == {0}
    assert stats["notes"]["duplicate_meta_asins_dropped"]["meta_Toys_and_Games.json.gz"] == 1
    items = read(os.path.join(path, "amz18.item")).set_index("item_id")
    assert items.loc["t1", "title"] == "Jigsaw" and items.loc["t1", "category"] == "Jigsaw_Puzzles"


def test_amazon_errors(tmp_path):
    files = amazon_2014(tmp_path)
    with pytest.raises(ConversionError, match="one meta file per category"):
        amazon.convert([f[0] for f in files], [files[0][1]], str(tmp_path / "o"), "a")
    with pytest.raises(ConversionError, match="file not found"):
        amazon.convert([str(tmp_path / "nope.json")], [files[0][1]], str(tmp_path / "o"), "a")
    junk = _write(str(tmp_path / "junk.json"), ["not json", "{also not", "nope"], gz=False)
    with pytest.raises(ConversionError, match="no parseable line"):
        amazon.convert([junk], [files[0][1]], str(tmp_path / "o"), "a")
    empty = _write(str(tmp_path / "reviews_Empty_5.json"), [json.dumps({"reviewerID": "A1"})], gz=False)
    with pytest.raises(ConversionError, match="malformed"):
        amazon.convert([empty, files[0][0]], [files[0][1], files[0][1]], str(tmp_path / "o"), "a")


def test_cli_shapes(tmp_path):
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    raw = write_kuaisar(str(tmp_path / "raw"))
    out = subprocess.run([sys.executable, "-m", "dataset_converters.kuaisar", raw, "--out", str(tmp_path / "o"),
                          "--name", "kuaisar-small"], capture_output=True, text=True, cwd=root)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "rec" in out.stdout and "search" in out.stdout and "overall" in out.stdout
    files = amazon_2014(tmp_path)
    out = subprocess.run([sys.executable, "-m", "dataset_converters", "amazon", "--reviews", files[0][0], files[1][0],
                          "--meta", files[0][1], files[1][1], "--scenario_names", "books,movies", "--out",
                          str(tmp_path / "o"), "--name", "amazon-msr"], capture_output=True, text=True, cwd=root)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "malformed lines (not converted): reviews_Books_5.json.gz: 1" in out.stdout
    assert os.path.isfile(tmp_path / "o" / "amazon-msr" / "amazon-msr.stats.json")
