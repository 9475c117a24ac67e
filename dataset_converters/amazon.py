"""Multi-scenario Amazon: k category review files -> k scenarios (McAuley 2014 or Ni 2018 format, auto-detected).

    python -m dataset_converters.amazon --reviews R1 R2 R3 --meta M1 M2 M3 [--scenario_names a,b,c]
        --out DATA_DIR --name amazon-msr [--label_threshold 3] [--common_users]

Scenario = category (the i-th reviews file with the i-th meta file); label = overall > threshold (3); item text =
meta title + leaf category. ``--common_users`` keeps only users present in every scenario (the LLM4MSR Amazon set).
Files may be gzipped or not. Reviews are strict JSON lines in both years; 2014 meta files are Python literals
(``ast.literal_eval``), 2018 meta files JSON (duplicate asins are dropped and counted). Malformed lines are counted
per file, reported at the end and in ``NAME.stats.json`` -- never silently skipped; a file that is mostly malformed
is an error.
"""
import argparse
import ast
import gzip
import json
import os
import re

import pandas as pd
from tqdm import tqdm

from dataset_converters.writer import ConversionError, add_common_args, finish, write_dataset

MAX_MALFORMED_SHARE = 0.5


def _open(path):
    if not os.path.isfile(path):
        raise ConversionError(f"{path}: file not found")
    with open(path, "rb") as f:
        magic = f.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


def scenario_name(path):
    """reviews_Books_5.json.gz (2014) / Books_5.json (2018) / meta_Books.json -> Books."""
    base = os.path.basename(path)
    base = re.sub(r"\.gz$", "", base)
    base = re.sub(r"\.json$", "", base)
    base = re.sub(r"^(reviews_|meta_)", "", base)
    return re.sub(r"_5$", "", base)


def _parse(line, fmt):
    if fmt == "json":
        return json.loads(line)
    return ast.literal_eval(line)


def detect_format(path):
    """'json' (strict JSON lines: 2014 reviews, all 2018 files) or 'python' (2014 meta: Python-literal lines)."""
    with _open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                json.loads(line)
                return "json"
            except ValueError:
                try:
                    ast.literal_eval(line)
                    return "python"
                except (ValueError, SyntaxError):
                    continue
    raise ConversionError(f"{path}: no parseable line (neither JSON nor Python-literal records)")


def records(path, extract, desc, malformed):
    """Yield ``extract(record)`` for every line of ``path`` (JSON or Python literal, gzipped or not). A line that
    does not parse or lacks a field ``extract`` needs is counted in ``malformed[file name]``, never silently
    dropped; a file that is mostly malformed is an error."""
    bad = total = 0
    fmt = detect_format(path)
    with _open(path) as f:
        for line in tqdm(f, desc=desc, unit=" lines", unit_scale=True):
            if not line.strip():
                continue
            total += 1
            try:
                value = extract(_parse(line, fmt))
            except (ValueError, SyntaxError, KeyError, TypeError):
                bad += 1
                continue
            yield value
    _check_malformed(path, bad, total)
    malformed[os.path.basename(path)] = bad


def read_reviews(path, scenario, threshold, malformed):
    def review(r):
        label = 1.0 if float(r["overall"]) > threshold else 0.0
        return str(r["reviewerID"]), str(r["asin"]), label, scenario, float(r.get("unixReviewTime", 0) or 0)

    rows = list(records(path, review, f"reviews {scenario}", malformed))
    if not rows:
        raise ConversionError(f"{path}: no reviews; scenario '{scenario}' would be empty")
    return pd.DataFrame(rows, columns=["user_id", "item_id", "label", "scenario", "timestamp"])


def _leaf_category(r):
    cats = r.get("categories")  # 2014: list of lists
    if isinstance(cats, list) and cats and isinstance(cats[0], list) and cats[0]:
        return str(cats[0][-1])
    cats = r.get("category")  # 2018: list
    if isinstance(cats, list) and cats:
        return str(cats[-1])
    return ""


def read_meta(path, wanted, malformed, duplicates):
    items, dup = {}, 0
    for asin, r in records(path, lambda r: (str(r["asin"]), r), f"meta {os.path.basename(path)}", malformed):
        if asin not in wanted:
            continue
        if asin in items:
            dup += 1
            continue
        title = re.sub(r"\s+", " ", str(r.get("title") or "")).strip()
        items[asin] = (title, re.sub(r"\s+", " ", _leaf_category(r)).strip())
    duplicates[os.path.basename(path)] = dup
    return items


def _check_malformed(path, bad, total):
    if total and bad / total > MAX_MALFORMED_SHARE:
        raise ConversionError(f"{path}: {bad} of {total} lines are malformed; is this an Amazon review/meta file?")


def convert(reviews, metas, out_dir, name="amazon-msr", scenario_names=None, label_threshold=3.0,
            common_users=False, seed=2020, overwrite=False):
    if len(reviews) != len(metas):
        raise ConversionError(f"--reviews has {len(reviews)} files but --meta {len(metas)}: give one meta file per "
                              f"category, in the same order")
    names = scenario_names or [scenario_name(r) for r in reviews]
    if len(names) != len(reviews) or len(set(names)) != len(names):
        raise ConversionError(f"--scenario_names {names} must be {len(reviews)} distinct names")
    malformed, duplicates = {}, {}
    inter = pd.concat([read_reviews(r, s, label_threshold, malformed) for r, s in zip(reviews, names)],
                      ignore_index=True)
    n_before = len(inter)
    if common_users:
        per_user = inter.groupby("user_id")["scenario"].nunique()
        keep = per_user.index[per_user == len(names)]
        inter = inter[inter["user_id"].isin(keep)].reset_index(drop=True)
        if inter.empty:
            raise ConversionError(f"--common_users: no user has reviews in all of {names}")
    wanted = set(inter["item_id"].unique())
    meta = {}
    for m in metas:
        for asin, value in read_meta(m, wanted, malformed, duplicates).items():
            meta.setdefault(asin, value)
    items = pd.DataFrame([(a, *meta.get(a, ("", ""))) for a in sorted(wanted)],
                         columns=["item_id", "title", "category"])
    items["title"] = items["title"].where(items["title"] != "", items["item_id"])
    items["category"] = items["category"].str.replace(" ", "_", regex=False)
    notes = {"malformed_lines": malformed, "duplicate_meta_asins_dropped": duplicates,
             "items_without_meta": int(sum(a not in meta for a in wanted)),
             "label": f"overall > {label_threshold}", "common_users": bool(common_users),
             "interactions_before_user_filter": int(n_before)}
    path, stats = write_dataset(
        out_dir, name, inter, {"user_id": "token", "item_id": "token", "label": "float", "scenario": "token",
                               "timestamp": "float", "title": "token_seq", "category": "token"},
        item=items, source="Amazon reviews: " + ", ".join(os.path.basename(r) for r in reviews),
        load_col={"inter": ["user_id", "item_id", "label", "scenario"], "item": ["item_id", "category"]},
        extra_config={"item_text_fields": ["title", "category"], "TIME_FIELD": "timestamp"},
        seed=seed, overwrite=overwrite, notes=notes,
    )
    if any(malformed.values()):
        print("malformed lines (not converted): " + ", ".join(f"{k}: {v}" for k, v in malformed.items() if v))
    return path, stats


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reviews", nargs="+", required=True, help="one review file per category (scenario)")
    parser.add_argument("--meta", nargs="+", required=True, help="the matching meta files, same order")
    parser.add_argument("--scenario_names", default=None, help="comma-separated (default: from the file names)")
    parser.add_argument("--label_threshold", type=float, default=3.0, help="label = overall > X (default 3)")
    parser.add_argument("--common_users", action="store_true", help="keep only users present in every scenario")
    add_common_args(parser, "amazon-msr")
    a = parser.parse_args(argv)
    names = [n.strip() for n in a.scenario_names.split(",")] if a.scenario_names else None
    path, stats = convert(a.reviews, a.meta, a.out, a.name, names, a.label_threshold, a.common_users, a.seed,
                          a.overwrite)
    finish(path, stats, a.name)


if __name__ == "__main__":
    main()
