"""Generic CSV -> multi-scenario atomic files.

    python -m dataset_converters.csv FILE --user_col U --item_col I --label_col L --scenario_col S
        --out DATA_DIR --name NAME [--feature_cols a,b] [--user_feature_cols c] [--item_feature_cols d]
        [--float_cols a] [--label_threshold 3] [--item_file ITEMS.csv] [--item_text_cols title,category]
        [--order_col T] [--split random|time] [--sep ,]
    python -m dataset_converters.csv PURCHASES.csv --user_col U --item_col I --scenario_col S --negatives 1 ...

Labels must be 0/1 unless ``--label_threshold X`` is given (then label = value > X). **Implicit feedback** (no
label column: every row is a positive, e.g. purchases): ``--negatives K`` samples K negatives per positive from the
same scenario's items, never an item the user has a positive for (in any scenario), without replacement per user,
seeded (``--negative_seed``); each negative joins its positive's split group and order value. Repeated
(user, item, scenario) positives are kept once (the earliest; the count is recorded in ``stats.json``).
``--order_col`` (a position or timestamp; ``--time_col`` is the same flag) is written as ``timestamp`` (recency in
the prompts) and, with ``--split time``, orders each user's interactions: the last ones are valid / test. Extra feature columns are
token fields (``--float_cols`` makes some of them float). ``--user_feature_cols`` / ``--item_feature_cols`` go to
``NAME.user`` / ``NAME.item`` and must have one value per user / item. ``--item_file`` is a CSV with the item id
column plus text columns (title, category, ...) written to ``NAME.item`` for the prompts; they are not loaded as
model features.
"""
import argparse
import re

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


_BARE_CR = re.compile(rb"\r(?!\n)")


def _refuse_unsafe_bytes(file, block=1 << 24):
    """Refuse what pandas would silently misread. A NUL byte: pandas cuts the value there (two ids would become one).
    A bare carriage return outside quotes in a file whose lines end with ``\n``: a CSV reader takes it for a line
    break, so an id such as ``"\r0"`` (written unquoted by pandas' ``to_csv``) comes back as ``"0"`` and a value
    ending a row early shifts the rest. A ``\r`` inside a quoted value, CRLF line ends and a file that uses ``\r``
    alone for every line end (old Mac) read correctly and pass. Needs an ASCII-compatible encoding."""
    offset, quotes, lines, first_cr, saw_lf, tail = 0, 0, 0, None, False, b""
    with open(file, "rb") as f:
        while chunk := f.read(block):
            pos = chunk.find(b"\x00")
            if pos >= 0:
                raise ConversionError(f"{file}: NUL byte at byte offset {offset + pos}; the file is binary, corrupt or "
                                      f"UTF-16 (then pass --encoding=utf-16)")
            chunk, start = tail + chunk, offset - len(tail)
            tail = chunk[-1:] if chunk.endswith(b"\r") else b""  # is it CRLF? the next block decides
            body = chunk[: len(chunk) - len(tail)]
            if first_cr is None:
                for m in _BARE_CR.finditer(body):
                    if (quotes + body.count(b'"', 0, m.start())) % 2 == 0:  # outside a quoted value
                        first_cr = (start + m.start(), lines + body.count(b"\n", 0, m.start()) + 1)
                        break
            quotes += body.count(b'"')
            lines += body.count(b"\n")
            saw_lf = saw_lf or b"\n" in body
            offset = start + len(chunk)
    # a trailing bare \r at the very end of the file only ends the last line
    if first_cr is not None and saw_lf:
        at, line = first_cr
        raise ConversionError(
            f"{file}: a bare carriage return (\\r) outside quotes at byte offset {at} (line {line}) in a file whose "
            f"lines end with \\n. A CSV reader takes it for a line break, which would cut or shift that row (a value "
            f"such as '\\r0' would come back as '0'). Quote values that contain \\r (pandas: "
            f"to_csv(..., quoting=csv.QUOTE_ALL)), remove the \\r, or convert the line ends to one style")


def _read_csv(file, **kwargs):
    """``pandas.read_csv`` with errors that name the file and say what to do."""
    try:
        return pd.read_csv(file, dtype=str, keep_default_na=False, **kwargs)
    except UnicodeDecodeError as e:
        raise ConversionError(f"{file}: not valid {kwargs.get('encoding', 'utf-8')} ({e}); pass the file's encoding "
                              f"(--encoding)") from None
    except pd.errors.ParserError as e:
        raise ConversionError(f"{file}: not a well-formed CSV ({str(e).strip()}); check the separator (--sep) and "
                              f"that values containing it are quoted") from None


def sample_negatives(pos, k, seed, source):
    """``k`` negatives per positive row of ``pos`` (columns user_id, item_id, scenario, group, order): from the same
    scenario's items, never an item the user has a positive for, distinct per (user, scenario). Returns the negative
    rows and how many positives got fewer than ``k`` (a scenario with too few items)."""
    rng = np.random.default_rng(seed)
    positives_of = pos.groupby("user_id", sort=False)["item_id"].agg(set).to_dict()
    out, short = [], 0
    for scen, rows in pos.groupby("scenario", sort=True):
        pool = np.asarray(pd.unique(rows["item_id"]))
        for user, mine in rows.groupby("user_id", sort=False):
            banned = positives_of[user]
            want = k * len(mine)
            chosen, seen = [], set()
            tries = 0
            while len(chosen) < want and tries < 20:
                for item in pool[rng.integers(0, pool.size, size=2 * (want - len(chosen)) + 4)]:
                    if item not in banned and item not in seen:
                        seen.add(item)
                        chosen.append(item)
                        if len(chosen) == want:
                            break
                tries += 1
            if len(chosen) < want:
                free = [i for i in pool if i not in banned and i not in seen]
                rng.shuffle(free)
                chosen += free[: want - len(chosen)]
            short += max(0, want - len(chosen))
            owner = np.arange(len(chosen)) // k  # negative j belongs to the user's positive j // k
            out.append(pd.DataFrame({"user_id": user, "item_id": chosen, "scenario": scen,
                                     "group": mine["group"].to_numpy()[owner], "order": mine["order"].to_numpy()[owner]}))
    if not out:
        raise ConversionError(f"{source}: no positives to sample negatives for")
    return pd.concat(out, ignore_index=True), short


def convert(file, out_dir, name, user_col, item_col, label_col, scenario_col, feature_cols=(), user_feature_cols=(),
            item_feature_cols=(), float_cols=(), label_threshold=None, item_file=None, time_col=None, sep=",",
            seed=2020, overwrite=False, encoding="utf-8", negatives=0, negative_seed=2020, split="random",
            item_text_cols=None, order_col=None):
    order_col = order_col or time_col
    ascii_compatible = encoding.lower().replace("-", "") in ("utf8", "utf8sig", "latin1", "ascii", "cp1252")
    if ascii_compatible:
        _refuse_unsafe_bytes(file)
    raw = _read_csv(file, sep=sep, na_values=[""], encoding=encoding)
    base = [user_col, item_col, scenario_col] + ([label_col] if label_col else [])
    _require(raw, base, file, "--user_col/--item_col/--label_col/--scenario_col")
    if not label_col and int(negatives or 0) < 1:
        raise ConversionError(f"{file}: no --label_col, so every row is a positive (implicit feedback): pass "
                              f"--negatives K to sample K negatives per positive (or --label_col for explicit labels)")
    if label_col and negatives:
        raise ConversionError(f"{file}: --negatives is for files without a label column; {label_col!r} holds labels")
    _require(raw, list(feature_cols), file, "--feature_cols")
    _require(raw, list(user_feature_cols), file, "--user_feature_cols")
    _require(raw, list(item_feature_cols), file, "--item_feature_cols")
    if order_col:
        _require(raw, [order_col], file, "--order_col")
    if split == "time" and not order_col:
        raise ConversionError(f"{file}: --split time needs --order_col (a position or timestamp column)")
    notes, groups = {}, None
    if label_col:
        inter = pd.DataFrame({
            "user_id": raw[user_col], "item_id": raw[item_col],
            "label": _label(raw[label_col], file, label_col, label_threshold), "scenario": raw[scenario_col],
        })
    else:
        if feature_cols:
            raise ConversionError(f"{file}: --feature_cols (per-interaction features) cannot be given to sampled "
                                  f"negatives; use --user_feature_cols / --item_feature_cols")
        inter, groups, notes = _implicit(raw, file, user_col, item_col, scenario_col, order_col, int(negatives),
                                         negative_seed)
    types = {"user_id": "token", "item_id": "token", "label": "float", "scenario": "token"}
    for col in feature_cols:
        inter[col] = raw[col]
        types[col] = "float" if col in float_cols else "token"
    if order_col:
        inter["timestamp"] = raw[order_col] if label_col else inter.pop("order")
        types["timestamp"] = "float" if pd.to_numeric(inter["timestamp"], errors="coerce").notna().all() else "token"
        if split == "time" and types["timestamp"] != "float":
            raise ConversionError(f"{file}: --order_col '{order_col}' must hold numbers for --split time")
    elif "order" in inter:
        inter.pop("order")
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
        if ascii_compatible:
            _refuse_unsafe_bytes(item_file)
        text = _read_csv(item_file, encoding=encoding)
        _require(text, [item_col], item_file, "--item_col")
        text = text.rename(columns={item_col: "item_id"})
        if text["item_id"].duplicated().any():
            raise ConversionError(f"{item_file}: item ids {text.loc[text['item_id'].duplicated(), 'item_id'].head(5).tolist()} "
                                  f"appear more than once")
        text_cols = [c for c in text.columns if c != "item_id" and c not in item_feature_cols]
        if item_text_cols:
            _require(text, list(item_text_cols), item_file, "--item_text_cols")
            text = text[["item_id"] + list(item_text_cols)]
            text_cols = list(item_text_cols)
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
                         source=str(file), seed=seed, overwrite=overwrite, notes=notes or None, groups=groups,
                         split=split, order_col="timestamp" if order_col else None)


def _implicit(raw, file, user_col, item_col, scenario_col, order_col, k, seed):
    """Positives only -> positives (repeats kept once) + k sampled negatives each; split groups; notes."""
    pos = pd.DataFrame({"user_id": raw[user_col], "item_id": raw[item_col], "scenario": raw[scenario_col]})
    pos["order"] = pd.to_numeric(raw[order_col], errors="coerce") if order_col else np.arange(len(raw), dtype=float)
    if pos["order"].isna().any():
        rows = (np.flatnonzero(pos["order"].isna().to_numpy())[:5] + 1).tolist()
        raise ConversionError(f"{file}: --order_col '{order_col}' has empty or non-numeric values (data rows {rows})")
    for col, flag in ((pos["user_id"], "--user_col"), (pos["item_id"], "--item_col"), (pos["scenario"], "--scenario_col")):
        if col.isna().any():
            raise ConversionError(f"{file}: column given by {flag} is empty in {int(col.isna().sum())} row(s)")
    pos = pos.sort_values("order", kind="stable")
    repeated = pos.duplicated(["user_id", "item_id", "scenario"])
    pos = pos[~repeated].sort_index().reset_index(drop=True)
    pos["group"] = np.arange(len(pos))
    neg, short = sample_negatives(pos, k, seed, file)
    pos["label"], neg["label"] = 1.0, 0.0
    inter = pd.concat([pos, neg], ignore_index=True)
    notes = {"implicit_feedback": {"positives": int(len(pos)), "repeated_positives_dropped": int(repeated.sum()),
                                   "negatives_per_positive": k, "negatives": int(len(neg)), "negative_seed": seed,
                                   "positives_short_of_negatives": int(short),
                                   "rule": "negatives from the same scenario's items, never a positive of the user, "
                                           "distinct per (user, scenario); each joins its positive's split group"}}
    groups = inter.pop("group").to_numpy()
    return inter[["user_id", "item_id", "label", "scenario", "order"]], groups, notes


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", help="the CSV file")
    add_common_args(parser, "csv-msr")
    parser.add_argument("--user_col", required=True)
    parser.add_argument("--item_col", required=True)
    parser.add_argument("--label_col", default=None, help="0/1 labels; omit for implicit feedback (--negatives)")
    parser.add_argument("--scenario_col", required=True)
    parser.add_argument("--feature_cols", default="", help="comma-separated extra interaction features")
    parser.add_argument("--user_feature_cols", default="", help="comma-separated user features (-> NAME.user)")
    parser.add_argument("--item_feature_cols", default="", help="comma-separated item features (-> NAME.item)")
    parser.add_argument("--float_cols", default="", help="which feature columns are numeric")
    parser.add_argument("--label_threshold", type=float, default=None, help="label = value > X")
    parser.add_argument("--item_file", default=None, help="CSV of item texts keyed by the item column")
    parser.add_argument("--order_col", "--time_col", dest="order_col", default=None,
                        help="position / timestamp column (recency in prompts; --split time)")
    parser.add_argument("--split", default="random", choices=["random", "time"],
                        help="random: seeded 8:1:1 per scenario; time: each user's last interactions are valid/test")
    parser.add_argument("--negatives", type=int, default=0, help="implicit feedback: negatives sampled per positive")
    parser.add_argument("--negative_seed", type=int, default=2020)
    parser.add_argument("--item_text_cols", default="", help="columns of --item_file used as item text (default all)")
    parser.add_argument("--sep", default=",", help="field separator of FILE (default ,)")
    parser.add_argument("--encoding", default="utf-8")
    a = parser.parse_args(argv)
    path, stats = convert(
        a.file, a.out, a.name, a.user_col, a.item_col, a.label_col, a.scenario_col, _split(a.feature_cols),
        _split(a.user_feature_cols), _split(a.item_feature_cols), _split(a.float_cols), a.label_threshold,
        a.item_file, None, a.sep, a.seed, a.overwrite, a.encoding, negatives=a.negatives,
        negative_seed=a.negative_seed, split=a.split, item_text_cols=_split(a.item_text_cols) or None,
        order_col=a.order_col,
    )
    finish(path, stats, a.name)


if __name__ == "__main__":
    main()
