"""Generic CSV -> multi-scenario atomic files.

    python -m dataset_converters.csv FILE --user_col U --item_col I --label_col L --scenario_col S
        --out DATA_DIR --name NAME [--feature_cols a,b] [--user_feature_cols c] [--item_feature_cols d]
        [--float_cols a] [--label_threshold 3] [--item_file ITEMS.csv] [--time_col T] [--sep ,]

Labels must be 0/1 unless ``--label_threshold X`` is given (then label = value > X). Extra feature columns are
token fields (``--float_cols`` makes some of them float). ``--user_feature_cols`` / ``--item_feature_cols`` go to
``NAME.user`` / ``NAME.item`` and must have one value per user / item. ``--item_file`` is a CSV with the item id
column plus text columns (title, category, ...) written to ``NAME.item`` for the prompts; they are not loaded as
model features.
"""
import argparse

import numpy as np
import pandas as pd

from dataset_converters.writer import ConversionError, add_common_args, finish, write_dataset


def _split(value):
    return [c.strip() for c in value.split(",") if c.strip()] if value else []


def _require(df, cols, source, flag):
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ConversionError(f"{source}: column(s) {missing} given by {flag} not found; columns are {list(df.columns)}")


def _label(series, source, col, threshold):
    values = pd.to_numeric(series, errors="coerce")
    if values.isna().any():
        bad = series[values.isna()].astype(str).unique()[:5].tolist()
        rows = (np.flatnonzero(values.isna().to_numpy())[:5] + 1).tolist()
        raise ConversionError(f"{source}: label column '{col}' has non-numeric or empty values {bad} "
                              f"(data rows {rows} ...)")
    if threshold is not None:
        return (values > threshold).astype(np.float64)
    if not values.isin([0, 1]).all():
        bad = sorted(values[~values.isin([0, 1])].unique().tolist())[:5]
        raise ConversionError(f"{source}: label column '{col}' must be 0/1, found {bad}; pass --label_threshold X "
                              f"to use label = value > X")
    return values.astype(np.float64)


def _per_key_table(df, key, cols, source, kind):
    """One row per ``key`` with ``cols``; a key with two different values is an error (nothing is dropped)."""
    table = df[[key] + cols].drop_duplicates()
    dup = table[key].duplicated(keep=False)
    if dup.any():
        example = table[dup].head(4).to_dict("records")
        raise ConversionError(f"{source}: {kind} feature columns {cols} are not constant per {kind} "
                              f"(e.g. {example}); pass them as --feature_cols instead")
    return table.reset_index(drop=True)


def _refuse_nul_bytes(file, block=1 << 24):
    """pandas silently cuts a value at a NUL byte (two ids would become one): refuse such files."""
    offset = 0
    with open(file, "rb") as f:
        while chunk := f.read(block):
            pos = chunk.find(b"\x00")
            if pos >= 0:
                raise ConversionError(f"{file}: NUL byte at byte offset {offset + pos}; the file is binary, corrupt or "
                                      f"UTF-16 (then pass --encoding=utf-16)")
            offset += len(chunk)


def convert(file, out_dir, name, user_col, item_col, label_col, scenario_col, feature_cols=(), user_feature_cols=(),
            item_feature_cols=(), float_cols=(), label_threshold=None, item_file=None, time_col=None, sep=",",
            seed=2020, overwrite=False, encoding="utf-8"):
    if encoding.lower().replace("-", "") in ("utf8", "utf8sig", "latin1", "ascii", "cp1252"):
        _refuse_nul_bytes(file)
    try:
        raw = pd.read_csv(file, sep=sep, dtype=str, keep_default_na=False, na_values=[""], encoding=encoding)
    except UnicodeDecodeError as e:
        raise ConversionError(f"{file}: not valid {encoding} ({e}); pass the file's encoding")
    base = [user_col, item_col, label_col, scenario_col]
    _require(raw, base, file, "--user_col/--item_col/--label_col/--scenario_col")
    _require(raw, list(feature_cols), file, "--feature_cols")
    _require(raw, list(user_feature_cols), file, "--user_feature_cols")
    _require(raw, list(item_feature_cols), file, "--item_feature_cols")
    if time_col:
        _require(raw, [time_col], file, "--time_col")

    inter = pd.DataFrame({
        "user_id": raw[user_col], "item_id": raw[item_col],
        "label": _label(raw[label_col], file, label_col, label_threshold), "scenario": raw[scenario_col],
    })
    types = {"user_id": "token", "item_id": "token", "label": "float", "scenario": "token"}
    for col in feature_cols:
        inter[col] = raw[col]
        types[col] = "float" if col in float_cols else "token"
    if time_col:
        inter["timestamp"] = raw[time_col]
        types["timestamp"] = "float" if pd.to_numeric(raw[time_col], errors="coerce").notna().all() else "token"
    load_col = {"inter": ["user_id", "item_id", "label", "scenario"] + list(feature_cols)}

    tables = {}
    for kind, key_col, cols in (("user", user_col, user_feature_cols), ("item", item_col, item_feature_cols)):
        if not cols:
            tables[kind] = None
            continue
        key = f"{kind}_id"
        tables[kind] = _per_key_table(raw.rename(columns={key_col: key}), key, list(cols), file, kind)
        for col in cols:
            types[col] = "float" if col in float_cols else "token"
        load_col[kind] = [key] + list(cols)
    user, item = tables["user"], tables["item"]
    text_cols = []
    if item_file:
        text = pd.read_csv(item_file, dtype=str, keep_default_na=False, encoding=encoding)
        _require(text, [item_col], item_file, "--item_col")
        text = text.rename(columns={item_col: "item_id"})
        if text["item_id"].duplicated().any():
            raise ConversionError(f"{item_file}: item ids {text.loc[text['item_id'].duplicated(), 'item_id'].head(5).tolist()} "
                                  f"appear more than once")
        text_cols = [c for c in text.columns if c != "item_id" and c not in item_feature_cols]
        for col in text_cols:
            types[col] = "token_seq"
        item = text if item is None else item.merge(text[["item_id"] + text_cols], on="item_id", how="outer")
        load_col.setdefault("item", ["item_id"])
    if item is not None and load_col.get("item") == ["item_id"]:
        load_col.pop("item")

    for col in types:
        if col in ("user_id", "item_id", "label", "scenario"):
            continue
        if types[col] == "float":
            frame = inter if col in inter else (user if user is not None and col in user else item)
            values = pd.to_numeric(frame[col], errors="coerce")
            if values.isna().any():
                raise ConversionError(f"{file}: --float_cols column '{col}' has non-numeric values "
                                      f"{frame.loc[values.isna(), col].unique()[:5].tolist()}")
    extra = {"item_text_fields": text_cols} if text_cols else {}
    return write_dataset(out_dir, name, inter, types, user=user, item=item, load_col=load_col, extra_config=extra,
                         source=str(file), seed=seed, overwrite=overwrite)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", help="the CSV file")
    add_common_args(parser, "csv-msr")
    parser.add_argument("--user_col", required=True)
    parser.add_argument("--item_col", required=True)
    parser.add_argument("--label_col", required=True)
    parser.add_argument("--scenario_col", required=True)
    parser.add_argument("--feature_cols", default="", help="comma-separated extra interaction features")
    parser.add_argument("--user_feature_cols", default="", help="comma-separated user features (-> NAME.user)")
    parser.add_argument("--item_feature_cols", default="", help="comma-separated item features (-> NAME.item)")
    parser.add_argument("--float_cols", default="", help="which feature columns are numeric")
    parser.add_argument("--label_threshold", type=float, default=None, help="label = value > X")
    parser.add_argument("--item_file", default=None, help="CSV of item texts keyed by the item column")
    parser.add_argument("--time_col", default=None, help="timestamp column (kept for recency, not a feature)")
    parser.add_argument("--sep", default=",", help="field separator of FILE (default ,)")
    parser.add_argument("--encoding", default="utf-8")
    a = parser.parse_args(argv)
    path, stats = convert(
        a.file, a.out, a.name, a.user_col, a.item_col, a.label_col, a.scenario_col, _split(a.feature_cols),
        _split(a.user_feature_cols), _split(a.item_feature_cols), _split(a.float_cols), a.label_threshold,
        a.item_file, a.time_col, a.sep, a.seed, a.overwrite, a.encoding,
    )
    finish(path, stats, a.name)


if __name__ == "__main__":
    main()
