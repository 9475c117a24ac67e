import json
import os

import pandas as pd
import pytest

from dataset_converters import csv as csv_conv
from dataset_converters import ml1m, ml100k, writer
from dataset_converters.writer import ConversionError, scenario_split
from tests.conftest import shared_file


def read(path):
    df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    df.columns = [c.split(":")[0] for c in df.columns]
    return df


def test_ml100k_counts_match_the_recipe(data_dir):
    folder = os.path.join(data_dir, "ml-100k-msr")
    stats = json.load(open(os.path.join(folder, "ml-100k-msr.stats.json")))
    counts = {k: v["interactions"] for k, v in stats["scenarios"].items()}
    assert counts == {"young": 26551, "middle": 35444, "senior": 38005}
    inter = read(os.path.join(folder, "ml-100k-msr.inter"))
    assert len(inter) == 100000
    assert set(inter["label"].astype(float)) == {0.0, 1.0}
    # label = rating > 3 on the source rows
    src = read(os.path.join(ml100k.recbole_ml100k_dir(), "ml-100k.inter"))
    assert int((src["rating"].astype(float) > 3).sum()) == stats["overall"]["positives"]
    user = read(os.path.join(folder, "ml-100k-msr.user"))
    item = read(os.path.join(folder, "ml-100k-msr.item"))
    assert {"age", "gender", "occupation"} <= set(user.columns)
    assert {"movie_title", "class"} <= set(item.columns)
    assert item.loc[item["item_id"] == "1", "movie_title"].item() == "Toy Story"


def test_split_is_fixed_disjoint_8_1_1_and_per_scenario(data_dir):
    folder = os.path.join(data_dir, "ml-100k-msr")
    parts = {p: read(os.path.join(folder, f"ml-100k-msr.{p}.inter")) for p in ("train", "valid", "test")}
    key = lambda df: set(zip(df["user_id"], df["item_id"]))
    assert not key(parts["train"]) & key(parts["valid"]) and not key(parts["valid"]) & key(parts["test"])
    assert sum(len(p) for p in parts.values()) == 100000
    for scen, n in {"young": 26551, "middle": 35444, "senior": 38005}.items():
        sizes = [int((p["scenario"] == scen).sum()) for p in parts.values()]
        assert sum(sizes) == n and abs(sizes[1] - n / 10) < 1 and abs(sizes[2] - n / 10) < 1
    # seeded: the same split again, a different one with another seed
    scen = pd.concat(parts.values())["scenario"].to_numpy()
    a, b, c = scenario_split(scen, seed=2020), scenario_split(scen, seed=2020), scenario_split(scen, seed=7)
    assert all((x == y).all() for x, y in zip(a, b)) and not (a[0] == c[0]).all()


def test_ml1m_counts_match_the_recipe(tmp_path):
    path, stats = ml1m.convert(str(tmp_path))
    counts = {k: v["interactions"] for k, v in stats["scenarios"].items()}
    assert counts == {"young": 210747, "middle": 395556, "senior": 393906}
    users = {k: v["users"] for k, v in stats["scenarios"].items()}
    assert users == {"young": 1325, "middle": 2096, "senior": 2619}
    ratios = {k: round(v["positive_ratio"], 3) for k, v in stats["scenarios"].items()}
    assert ratios == {"young": 0.552, "middle": 0.563, "senior": 0.600}


def test_csv_douban_sample(tmp_path):
    path, stats = csv_conv.convert(shared_file("douban_sample.csv"), str(tmp_path), "douban-sample", "user_id",
                                   "item_id", "rating", "domain", feature_cols=["time_bin"],
                                   user_feature_cols=["living_place"])
    assert {k: v["interactions"] for k, v in stats["scenarios"].items()} == {"book": 364, "movie": 2299, "music": 337}
    assert stats["overall"]["users"] == 1352 and stats["overall"]["items"] == 2502
    assert round(stats["overall"]["positive_ratio"], 3) == 0.645
    user = read(os.path.join(path, "douban-sample.user"))
    assert user["user_id"].is_unique and "living_place" in user.columns
    assert len(read(os.path.join(path, "douban-sample.train.inter"))) == 2404


def test_csv_mind_sample(tmp_path):
    path, stats = csv_conv.convert(shared_file("mind_sample.csv"), str(tmp_path), "mind-sample", "User_ID", "News_ID",
                                   "label", "Category", item_feature_cols=["SubCategory"])
    assert set(stats["scenarios"]) == {"news", "lifestyle", "sports", "finance"}
    assert stats["overall"]["interactions"] == 8000
    assert stats["overall"]["positives"] == 363
    for part in ("train", "valid", "test"):
        assert set(stats["splits"][part]["scenarios"]) == set(stats["scenarios"])


def _tiny_csv(tmp_path, rows, header="u,i,y,s"):
    p = tmp_path / "tiny.csv"
    p.write_text(header + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return str(p)


def _tiny_rows(n=40):
    return [f"{k % 7},{k % 11},{k % 2},{'a' if k % 3 else 'b'}" for k in range(n)]


def test_csv_errors_name_the_problem(tmp_path):
    good = _tiny_csv(tmp_path, _tiny_rows())
    with pytest.raises(ConversionError, match=r"'scen'.*not found"):
        csv_conv.convert(good, str(tmp_path / "o"), "t", "u", "i", "y", "scen")
    bad_label = _tiny_csv(tmp_path, _tiny_rows() + ["1,2,5,a"])
    with pytest.raises(ConversionError, match=r"label column 'y' must be 0/1, found \[5\].*--label_threshold"):
        csv_conv.convert(bad_label, str(tmp_path / "o"), "t", "u", "i", "y", "s")
    path, stats = csv_conv.convert(bad_label, str(tmp_path / "o"), "t", "u", "i", "y", "s", label_threshold=0.5)
    assert stats["overall"]["positives"] == 21
    empty_user = _tiny_csv(tmp_path, _tiny_rows() + [",2,1,a"])
    with pytest.raises(ConversionError, match=r"column 'user_id' is empty in 1 row"):
        csv_conv.convert(empty_user, str(tmp_path / "o2"), "t", "u", "i", "y", "s")
    with pytest.raises(ConversionError, match=r"not constant per user"):
        csv_conv.convert(good, str(tmp_path / "o3"), "t", "u", "i", "y", "s", user_feature_cols=["i"])


def _ids(path):
    return sorted(pd.concat([writer.read_atomic(os.path.join(path, f"{os.path.basename(path)}.{part}.inter"))
                             for part in ("train", "valid", "test")])["user_id"])


def test_csv_line_ends_are_read_right_or_refused(tmp_path):
    """A bare carriage return outside quotes would be read as a line break (pandas writes '\\r0' unquoted and reads
    it back as '0'): refused with its byte offset and line. CRLF files, a \\r inside quotes, and NUL bytes too."""
    rows = _tiny_rows()
    body = ("u,i,y,s\n" + "\n".join(rows) + "\n").encode()
    crlf = tmp_path / "crlf.csv"
    crlf.write_bytes(body.replace(b"\n", b"\r\n"))
    path, _ = csv_conv.convert(str(crlf), str(tmp_path / "o1"), "t", "u", "i", "y", "s")
    assert _ids(path) == sorted(r.split(",")[0] for r in rows)  # no id keeps a stray \r
    bare = tmp_path / "bare.csv"
    bare.write_bytes(body + b"\r0,3,1,a\n")
    line = len(rows) + 2
    with pytest.raises(ConversionError, match=rf"bare.csv: a bare carriage return .* byte offset {len(body)} "
                                              rf"\(line {line}\).*'\\r0' would come back as '0'.*quot"):
        csv_conv.convert(str(bare), str(tmp_path / "o2"), "t", "u", "i", "y", "s")
    # the same \r split over two read blocks: the \r alone at a block's end is not taken for a CRLF
    with pytest.raises(ConversionError, match=rf"byte offset {len(body)} "):
        csv_conv._refuse_unsafe_bytes(str(bare), block=len(body) + 1)
    for block in (len(body), len(body) - 1, 7):  # a CRLF split across blocks is still a CRLF
        csv_conv._refuse_unsafe_bytes(str(crlf), block=block)
    quoted = tmp_path / "quoted.csv"
    quoted.write_bytes(body + b'"x\ry",3,1,a\n')  # a \r inside a quoted id: read as written, then refused by name
    with pytest.raises(ConversionError, match=r"user_id.*(tab|line|carriage|\\r)"):
        csv_conv.convert(str(quoted), str(tmp_path / "o3"), "t", "u", "i", "y", "s")
    long_row = tmp_path / "long.csv"
    long_row.write_bytes(body + b"1,2,1,a,extra\n")
    with pytest.raises(ConversionError, match=r"long.csv: not a well-formed CSV .*--sep"):
        csv_conv.convert(str(long_row), str(tmp_path / "o4"), "t", "u", "i", "y", "s")
    nul = tmp_path / "nul.csv"
    nul.write_bytes(body + b"1\x002,3,1,a\n")
    with pytest.raises(ConversionError, match=rf"nul.csv: NUL byte at byte offset {len(body) + 1}"):
        csv_conv.convert(str(nul), str(tmp_path / "o5"), "t", "u", "i", "y", "s")


def test_existing_dataset_needs_overwrite(tmp_path):
    src = _tiny_csv(tmp_path, _tiny_rows())
    csv_conv.convert(src, str(tmp_path), "t", "u", "i", "y", "s")
    with pytest.raises(FileExistsError, match="--overwrite"):
        csv_conv.convert(src, str(tmp_path), "t", "u", "i", "y", "s")
    csv_conv.convert(src, str(tmp_path), "t", "u", "i", "y", "s", overwrite=True)
    assert sorted(e for e in os.listdir(tmp_path) if e.startswith(".")) == []


def test_killed_conversion_leaves_no_dataset(tmp_path, monkeypatch):
    """A conversion that dies half-way leaves neither a complete-looking dataset nor its partial folder."""
    src = _tiny_csv(tmp_path, _tiny_rows())
    real, calls = writer._write_atomic_file, []

    def dying(df, types, path):
        calls.append(path)
        if len(calls) == 3:
            raise KeyboardInterrupt("killed")
        real(df, types, path)

    monkeypatch.setattr(writer, "_write_atomic_file", dying)
    with pytest.raises(KeyboardInterrupt):
        csv_conv.convert(src, str(tmp_path / "out"), "t", "u", "i", "y", "s")
    assert os.listdir(tmp_path / "out") == []
    # a partial folder left by a hard kill (no cleanup ran) is removed by the next conversion
    os.makedirs(tmp_path / "out" / ".t.partial-dead")
    monkeypatch.setattr(writer, "_write_atomic_file", real)
    csv_conv.convert(src, str(tmp_path / "out"), "t", "u", "i", "y", "s")
    assert os.listdir(tmp_path / "out") == ["t"]


def test_cli_runs_as_module(tmp_path):
    import subprocess
    import sys

    src = _tiny_csv(tmp_path, _tiny_rows())
    out = subprocess.run([sys.executable, "-m", "dataset_converters", "csv", src, "--user_col", "u", "--item_col", "i",
                          "--label_col", "y", "--scenario_col", "s", "--out", str(tmp_path / "o"), "--name", "tiny"],
                         capture_output=True, text=True, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert out.returncode == 0, out.stderr
    assert "overall" in out.stdout and os.path.isfile(tmp_path / "o" / "tiny" / "tiny.yaml")
    bad = subprocess.run([sys.executable, "-m", "dataset_converters", "csv", src, "--user_col", "nope", "--item_col",
                          "i", "--label_col", "y", "--scenario_col", "s", "--out", str(tmp_path / "o2")],
                         capture_output=True, text=True, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert bad.returncode == 1 and "['nope']" in bad.stderr and "Traceback" not in bad.stderr
