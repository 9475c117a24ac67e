"""KuaiSAR (Sun et al., CIKM 2023) as two scenarios: ``rec`` (recommendation feed) and ``search``.

    python -m dataset_converters.kuaisar RAW --out DATA_DIR [--name kuaisar-small|kuaisar]

RAW is ``KuaiSAR.zip`` / ``KuaiSAR_v2.zip``, the unpacked folder, or the folder inside the zip. Scenario ``rec``
comes from ``rec_inter.csv`` (label ``click``), scenario ``search`` from ``src_inter.csv`` (label
``click_cnt > 0``); user features from ``user_features.csv`` (``rec_active_level`` or ``reco_active_level``); item
features and the English category names (the item text for prompts) from ``item_features.csv``. Columns are read
by name; every file is streamed in chunks (the full version has ~20M interactions and a 1.2 GB item file with very
long quoted fields), so memory stays bounded.
"""
import argparse
import csv
import io
import os
import sys
import zipfile

import numpy as np
import pandas as pd
from tqdm import tqdm

from dataset_converters.writer import ConversionError, add_common_args, finish, write_dataset

FILES = ("rec_inter.csv", "src_inter.csv", "user_features.csv", "item_features.csv")
REC_COLS = {"user_id": "user_id", "item_id": "item_id", "click": "label", "timestamp": "timestamp"}
SRC_COLS = {"user_id": "user_id", "item_id": "item_id", "click_cnt": "label", "search_session_timestamp": "timestamp"}
USER_COLS = ["user_id", "search_active_level", "rec_active_level", "onehot_feat1", "onehot_feat2"]
ITEM_FEATURES = ["item_type", "upload_type", "first_level_category_id", "second_level_category_id"]
ITEM_TEXT = ["first_level_category_name_en", "second_level_category_name_en", "third_level_category_name_en"]
EMPTY_CATEGORY = {"", "空", "empty", "nan", "None"}
CHUNK = 1_000_000


class RawSource:
    """The raw files, from a zip (any folder inside it) or a folder (or the folder inside the unpacked zip)."""

    def __init__(self, raw):
        self.raw = raw
        self.zip = None
        self.members = {}
        if os.path.isfile(raw) and zipfile.is_zipfile(raw):
            self.zip = zipfile.ZipFile(raw)
            for name in self.zip.namelist():
                base = os.path.basename(name)
                if base in FILES and not name.startswith("__MACOSX"):
                    self.members.setdefault(base, name)
        elif os.path.isdir(raw):
            for root, _, files in os.walk(raw):
                for base in files:
                    if base in FILES:
                        self.members.setdefault(base, os.path.join(root, base))
        else:
            raise ConversionError(f"{raw}: neither a zip file nor a folder (pass KuaiSAR.zip, KuaiSAR_v2.zip or the "
                                  f"unpacked folder)")
        missing = [f for f in FILES if f not in self.members]
        if missing:
            raise ConversionError(f"{raw}: missing {', '.join(missing)} (found: {sorted(self.members) or 'nothing'}); "
                                  f"download the complete KuaiSAR archive")

    def label(self, base):
        return f"{self.raw}:{self.members[base]}" if self.zip else self.members[base]

    def open(self, base):
        if self.zip:
            return io.TextIOWrapper(self.zip.open(self.members[base]), encoding="utf-8", newline="")
        return open(self.members[base], encoding="utf-8", newline="")

    def size(self, base):
        if self.zip:
            return self.zip.getinfo(self.members[base]).file_size
        return os.path.getsize(self.members[base])

    def header(self, base):
        with self.open(base) as f:
            return next(csv.reader(f))


def _reader(source, base, usecols):
    csv.field_size_limit(sys.maxsize)
    header = source.header(base)
    missing = [c for c in usecols if c not in header]
    if missing:
        raise ConversionError(f"{source.label(base)}: column(s) {missing} missing (header: {header})")
    f = source.open(base)
    return f, pd.read_csv(f, usecols=list(usecols), dtype=str, keep_default_na=False, chunksize=CHUNK,
                          engine="c")


def read_interactions(source, base, cols, scenario, positive):
    """Stream one interaction file -> list of chunks (user_id int64, item_id int64, label float32, timestamp
    float64, scenario category); the caller concatenates all files once (one copy, bounded peak memory)."""
    f, chunks = _reader(source, base, cols)
    parts, rows = [], 0
    bar = tqdm(desc=f"reading {base}", unit=" rows", unit_scale=True)
    with f:
        for chunk in chunks:
            chunk = chunk.rename(columns=cols)
            out = pd.DataFrame({
                "user_id": pd.to_numeric(chunk["user_id"], errors="coerce"),
                "item_id": pd.to_numeric(chunk["item_id"], errors="coerce"),
                "label": positive(pd.to_numeric(chunk["label"], errors="coerce")),
                "timestamp": pd.to_numeric(chunk["timestamp"], errors="coerce"),
            })
            bad = out[["user_id", "item_id"]].isna().any(axis=1) | chunk["label"].eq("")
            if bad.any():
                first = int(np.flatnonzero(bad.to_numpy())[0]) + rows + 2
                raise ConversionError(f"{source.label(base)}: {int(bad.sum())} row(s) with an empty or non-numeric "
                                      f"user_id / item_id / label (first at line {first})")
            rows += len(chunk)
            bar.update(len(chunk))
            out = out.astype({"user_id": "int64", "item_id": "int64", "label": "float32"})
            out["scenario"] = pd.Categorical([scenario] * len(out), categories=["rec", "search"])
            parts.append(out)
    bar.close()
    if rows == 0:
        raise ConversionError(f"{source.label(base)}: no interactions; scenario '{scenario}' would be empty")
    return parts


def read_users(source, user_ids):
    base = "user_features.csv"
    header = source.header(base)
    level = "rec_active_level" if "rec_active_level" in header else "reco_active_level"
    cols = ["user_id", "search_active_level", level, "onehot_feat1", "onehot_feat2"]
    f, chunks = _reader(source, base, cols)
    with f:
        users = pd.concat(list(chunks), ignore_index=True).rename(columns={level: "rec_active_level"})
    users["user_id"] = pd.to_numeric(users["user_id"], errors="coerce")
    if users["user_id"].isna().any():
        raise ConversionError(f"{source.label(base)}: empty or non-numeric user_id")
    users = users.astype({"user_id": "int64"}).drop_duplicates("user_id")
    return users[users["user_id"].isin(user_ids)][USER_COLS]


def read_items(source, item_ids):
    """Stream the (large) item file keeping only the items that occur in the interactions."""
    base = "item_features.csv"
    header = source.header(base)
    text = [c for c in ITEM_TEXT if c in header]
    feats = [c for c in ITEM_FEATURES if c in header]
    if "item_id" not in header or not text:
        raise ConversionError(f"{source.label(base)}: needs item_id and the English category names "
                              f"({ITEM_TEXT[0]}, ...); header: {header}")
    f, chunks = _reader(source, base, ["item_id"] + feats + text)
    keep, total = [], 0
    bar = tqdm(desc=f"reading {base}", unit=" items", unit_scale=True)
    with f:
        for chunk in chunks:
            total += len(chunk)
            bar.update(len(chunk))
            ids = pd.to_numeric(chunk["item_id"], errors="coerce")
            mask = ids.isin(item_ids).to_numpy()
            chunk = chunk.loc[mask].copy()
            chunk["item_id"] = ids[mask].astype("int64").to_numpy()
            keep.append(chunk)
    bar.close()
    items = pd.concat(keep, ignore_index=True).drop_duplicates("item_id")
    del keep
    items["item_id"] = items["item_id"].astype("int64")
    category = None
    for col in text:  # "空" / "empty" mark missing levels; spaces inside a name join with "_" (one token)
        name = items[col].str.strip()
        name = name.where(~name.isin(EMPTY_CATEGORY), "").str.replace(r"\s+", "_", regex=True)
        category = name if category is None else category.where(name == "", (category + " " + name).str.strip())
    items["category"] = category
    items = items[["item_id"] + feats + ["category"]]
    # few distinct values per column: categorical columns keep millions of items small in memory
    return items.astype({c: "category" for c in feats + ["category"]}), feats, total


def convert(raw, out_dir, name="kuaisar-small", seed=2020, overwrite=False):
    source = RawSource(raw)
    rec = read_interactions(source, "rec_inter.csv", REC_COLS, "rec", lambda v: v)
    for part in rec:
        bad = ~part["label"].isin([0, 1])
        if bad.any():
            raise ConversionError(f"{source.label('rec_inter.csv')}: click must be 0/1, found "
                                  f"{sorted(part.loc[bad, 'label'].unique().tolist())[:5]}")
    src = read_interactions(source, "src_inter.csv", SRC_COLS, "search", lambda v: (v > 0).astype("float32"))
    inter = pd.concat(rec + src, ignore_index=True)
    del rec, src
    users = read_users(source, pd.unique(inter["user_id"]))
    items, item_feats, n_items_file = read_items(source, pd.unique(inter["item_id"]))
    notes = {"interactions_with_unknown_item": int((~inter["item_id"].isin(items["item_id"])).sum()),
             "items_in_item_file": n_items_file, "users_with_features": int(len(users))}
    types = {"user_id": "token", "item_id": "token", "label": "float", "scenario": "token", "timestamp": "float",
             **{c: "token" for c in USER_COLS[1:]}, **{c: "token" for c in item_feats}, "category": "token_seq"}
    path, stats = write_dataset(
        out_dir, name, inter, types, user=users, item=items, source=f"KuaiSAR ({raw})",
        load_col={"inter": ["user_id", "item_id", "label", "scenario"], "user": USER_COLS,
                  "item": ["item_id"] + item_feats},
        extra_config={"item_text_fields": ["category"], "TIME_FIELD": "timestamp"},
        seed=seed, overwrite=overwrite, notes=notes,
    )
    return path, stats


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("raw", help="KuaiSAR.zip / KuaiSAR_v2.zip or the unpacked folder")
    add_common_args(parser, "kuaisar-small")
    args = parser.parse_args(argv)
    path, stats = convert(args.raw, args.out, args.name, args.seed, args.overwrite)
    finish(path, stats, args.name)


if __name__ == "__main__":
    main()
