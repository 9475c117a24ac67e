"""The writer every converter shares: checks, the fixed split, atomic files, statistics and the dataset YAML."""
import json
import logging
import os
import time

import numpy as np
import pandas as pd
import yaml
from tqdm import tqdm

from recbole_llm4msr.atomic import building_dir, remove_stale_temp_dirs

logger = logging.getLogger(__name__)

SPLIT_PARTS = ("train", "valid", "test")
ATOMIC_TYPES = ("token", "token_seq", "float", "float_seq")


class ConversionError(ValueError):
    """Input that cannot be converted; the message names the file, column or value and what to do."""


def read_atomic(path, usecols=None):
    """A RecBole atomic file as strings with plain column names (``name:type`` -> ``name``); ``usecols`` must exist.
    ``path`` may be an open text file (e.g. a member of a wheel)."""
    df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, quoting=3, encoding="utf-8")
    df.columns = [c.split(":")[0] for c in df.columns]
    if usecols is not None:
        missing = [c for c in usecols if c not in df.columns]
        if missing:
            raise ConversionError(f"{path}: column(s) {missing} missing (columns: {list(df.columns)})")
        df = df[list(usecols)]
    return df


def scenario_split(scenarios, ratios=(0.8, 0.1, 0.1), seed=2020, groups=None, order=None, users=None):
    """Row indices of the train / valid / test parts, stratified by scenario; each part keeps the original row order.

    * ``groups`` (one code per row; default: every row its own group): rows of one group always land in the same
      part. The writer groups by (user, item, scenario), so a repeated interaction can never be both trained on and
      tested (and converters group a sampled negative with its positive).
    * random split (``order`` None): a seeded random 8:1:1 split of each scenario's groups. With one row per group
      it is exactly the split of the rows.
    * time split (``order``: a position or timestamp per row, and ``users``): inside each (user, scenario), the
      groups ordered by their first ``order`` value; the last ``ratio_test`` share (rounded, at least one group when
      the user has three or more) is test, the share before it valid, the rest train.
    """
    scenarios = np.asarray(scenarios)
    n = scenarios.size
    groups = np.arange(n) if groups is None else np.asarray(groups)
    total = float(sum(ratios))
    part = np.zeros(n, dtype=np.int8)
    if order is None:
        rng = np.random.default_rng(seed)
        for value in sorted(pd.unique(scenarios).tolist(), key=str):
            idx = np.flatnonzero(scenarios == value)
            uniq, first, inverse = np.unique(groups[idx], return_index=True, return_inverse=True)
            rank = np.empty(uniq.size, dtype=np.int64)
            rank[np.argsort(first, kind="stable")] = np.arange(uniq.size)  # groups in first-occurrence order
            g = uniq.size
            slot = np.empty(g, dtype=np.int64)
            slot[rng.permutation(g)] = np.arange(g)
            n_valid, n_test = int(g * ratios[1] / total), int(g * ratios[2] / total)
            bucket = np.zeros(g, dtype=np.int8)
            bucket[g - n_valid - n_test:g - n_test] = 1
            bucket[g - n_test:] = 2
            part[idx] = bucket[slot[rank[inverse]]]
    else:
        if users is None:
            raise ValueError("a time split needs the users of the rows")
        frame = pd.DataFrame({"s": scenarios, "u": np.asarray(users), "g": groups,
                              "o": pd.to_numeric(pd.Series(np.asarray(order)), errors="coerce").to_numpy()})
        if frame["o"].isna().any():
            raise ValueError("the order column has empty or non-numeric values; a time split needs a number per row")
        first = frame.groupby(["s", "u", "g"], sort=False, observed=True)["o"].min().reset_index()
        first = first.sort_values(["s", "u", "o", "g"], kind="stable")
        size = first.groupby(["s", "u"], sort=False, observed=True)["g"].transform("size").to_numpy()
        pos = first.groupby(["s", "u"], sort=False, observed=True).cumcount().to_numpy()
        n_test = np.where(size >= 3, np.maximum(1, np.floor(size * ratios[2] / total + 0.5)), 0).astype(int)
        n_valid = np.where(size >= 3, np.maximum(1, np.floor(size * ratios[1] / total + 0.5)), 0).astype(int)
        bucket = np.where(pos >= size - n_test, 2, np.where(pos >= size - n_test - n_valid, 1, 0)).astype(np.int8)
        keyed = pd.Series(bucket, index=pd.MultiIndex.from_frame(first[["s", "u", "g"]]))
        part = keyed.reindex(pd.MultiIndex.from_frame(frame[["s", "u", "g"]])).to_numpy().astype(np.int8)
    return [np.flatnonzero(part == k) for k in range(len(ratios))]


def pair_groups(inter, user_col, item_col, scenario_col):
    """One code per (user, item, scenario): the unit that never straddles splits."""
    return pd.MultiIndex.from_arrays([inter[user_col], inter[item_col], inter[scenario_col]]).factorize()[0]


def pair_overlap(groups, parts):
    """How many (user, item, scenario) groups occur in two parts (train_valid, train_test, valid_test)."""
    sets = [set(np.unique(np.asarray(groups)[idx]).tolist()) for idx in parts]
    names = dict(zip(range(3), SPLIT_PARTS))
    return {f"{names[a]}_{names[b]}": len(sets[a] & sets[b]) for a, b in ((0, 1), (0, 2), (1, 2))}


def sparsity(interactions, users, items):
    """The LLM4MSR dataset table's ``1 - interactions / (users * items)``: the one definition in the project.

    Repeated interactions can push the ratio below 0: 0 then. None where there are no users or items."""
    if not users or not items:
        return None
    return max(0.0, 1.0 - interactions / (users * items))


def stats_row(interactions, users, items, positives):
    """One row of the statistics table (a scenario or the whole dataset)."""
    n, users, items, pos = int(interactions), int(users), int(items), int(positives)
    return {"users": users, "items": items, "interactions": n, "positives": pos,
            "positive_ratio": pos / n if n else None, "sparsity": sparsity(n, users, items)}


def scenario_stats(inter, user_col, item_col, label_col, scenario_col, names=None):
    """Per scenario (and overall): users, items, interactions, positives, positive ratio, sparsity.

    Aggregates column-wise (no per-scenario copies of the frame): it runs on tens of millions of rows. ``names``:
    also list these scenarios when they have no rows (all counts 0)."""
    positive = inter[label_col] > 0.5
    out = {"overall": stats_row(len(inter), inter[user_col].nunique(), inter[item_col].nunique(), positive.sum()),
           "scenarios": {}}
    groups = inter[scenario_col]
    users = inter[user_col].groupby(groups, sort=True, observed=True).nunique()
    items = inter[item_col].groupby(groups, sort=True, observed=True).nunique()
    sizes = groups.value_counts()
    pos = positive.groupby(groups, sort=True, observed=True).sum()
    for name in users.index:
        out["scenarios"][str(name)] = stats_row(sizes[name], users[name], items[name], pos[name])
    if names is not None:
        out["scenarios"] = {str(n): out["scenarios"].get(str(n), stats_row(0, 0, 0, 0)) for n in names}
    return out


def format_stats(name, stats, split_sizes=None):
    head = f"{'scenario':<16}{'users':>9}{'items':>9}{'inters':>11}{'positives':>11}{'pos.ratio':>10}{'sparsity':>10}"
    lines = [f"dataset {name}", head]
    rows = list(stats["scenarios"].items()) + [("overall", stats["overall"])]
    for scen, s in rows:
        lines.append(
            f"{scen:<16}{s['users']:>9}{s['items']:>9}{s['interactions']:>11}{s['positives']:>11}"
            f"{s['positive_ratio']:>10.3f}{s['sparsity']:>10.5f}"
        )
    if split_sizes:
        lines.append("split: " + ", ".join(f"{k} {v}" for k, v in split_sizes.items()))
    return "\n".join(lines)


def _is_text(series):
    return not (pd.api.types.is_numeric_dtype(series) or isinstance(series.dtype, pd.CategoricalDtype))


def _clean_text(series, column, filename):
    """Atomic files are tab-separated lines: tabs / newlines inside a value become spaces (counted, logged).
    Numeric columns are written as they are (no per-value strings: converters handle tens of millions of rows)."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        cats = pd.Series(series.cat.categories.astype(str))
        if cats.str.contains(r"[\t\r\n]", regex=True).any():
            return _clean_text(series.astype(str), column, filename)
        return series
    if not _is_text(series):
        return series
    s = series.astype(str)
    bad = s.str.contains(r"[\t\r\n]", regex=True)
    if bad.any():
        logger.warning(f"{filename}: {int(bad.sum())} value(s) of column '{column}' contained tabs or newlines; "
                       f"replaced by spaces")
        s = s.str.replace(r"[\t\r\n]+", " ", regex=True)
    return s


def _write_atomic_file(df, types, path):
    filename = os.path.basename(path)
    for col in df.columns:
        if types[col] not in ATOMIC_TYPES:
            raise ConversionError(f"{filename}: column '{col}' has unknown atomic type '{types[col]}' "
                                  f"(use {ATOMIC_TYPES})")
    cleaned = {col: _clean_text(df[col], col, filename) for col in df.columns if types[col] != "float"}
    if any(cleaned[c] is not df[c] for c in cleaned):  # copy only when a text column had to change
        df = df.assign(**{c: v for c, v in cleaned.items() if v is not df[c]})
    df.to_csv(path, sep="\t", index=False, lineterminator="\n", chunksize=500_000,
              header=[f"{c}:{types[c]}" for c in df.columns])


def check_interactions(inter, source, user_col, item_col, label_col, scenario_col):
    """Fail clearly on missing ids / labels / scenarios and on labels outside {0, 1}."""
    for col in (user_col, item_col, label_col, scenario_col):
        if col not in inter.columns:
            raise ConversionError(f"{source}: column '{col}' is missing (columns: {list(inter.columns)})")
        missing = inter[col].isna()
        if _is_text(inter[col]):
            missing |= inter[col].astype(str).str.strip() == ""
        if missing.any():
            rows = (np.flatnonzero(missing.to_numpy())[:5] + 1).tolist()
            raise ConversionError(
                f"{source}: column '{col}' is empty in {int(missing.sum())} row(s) (data rows {rows} ...); "
                f"fix or remove those rows"
            )
    for col in inter.columns:
        if not _is_text(inter[col]):
            continue
        bad_chars = inter[col].astype(str).str.contains(r'[\t\n\r\x00"]', regex=True)
        if bad_chars.any():
            rows = (np.flatnonzero(bad_chars.to_numpy())[:5] + 1).tolist()
            raise ConversionError(
                f"{source}: column '{col}' holds tabs, line breaks, double quotes or NUL characters in "
                f"{int(bad_chars.sum())} row(s) (data rows {rows} ...); RecBole's atomic files are tab-separated "
                f"lines read with quote parsing: clean those values")
    bad = ~inter[label_col].isin([0, 1])
    if bad.any():
        values = sorted(map(str, pd.unique(inter.loc[bad, label_col])))[:5]
        raise ConversionError(
            f"{source}: label column '{label_col}' must be 0/1 after conversion, found {values}; "
            f"set a threshold (label = value > threshold) for ratings"
        )
    if inter[scenario_col].nunique() < 2:
        logger.warning(f"{source}: only one scenario in column '{scenario_col}'")


def write_dataset(out_dir, name, inter, types, *, user=None, item=None, user_col="user_id", item_col="item_id",
                  label_col="label", scenario_col="scenario", load_col=None, extra_config=None, source="",
                  seed=2020, ratios=(0.8, 0.1, 0.1), overwrite=False, notes=None, groups=None, split="random",
                  order_col=None):
    """Write ``out_dir/name/`` atomically and return ``(path, stats)``.

    ``types`` maps every column of ``inter`` / ``user`` / ``item`` to its atomic type. ``load_col`` is the
    ``load_col`` of the dataset YAML (which columns RecBole loads as model features); columns written but not
    loaded (timestamps, item titles) are there for the knowledge pipeline.

    The split (:func:`scenario_split`) never separates the rows of one (user, item, scenario) -- or of one of the
    converter's ``groups`` (e.g. a positive and its sampled negatives), which must each lie inside one such pair or
    hold distinct pairs. ``split="time"`` orders each user's groups by ``order_col``. ``stats.json`` records the
    split and the (user, item, scenario) pairs found in two parts (``pair_overlap``: 0).
    """
    final = os.path.join(out_dir, name)
    if os.path.exists(final) and not overwrite:
        raise FileExistsError(f"{final} already exists; pass --overwrite to replace it")
    check_interactions(inter, source or name, user_col, item_col, label_col, scenario_col)
    os.makedirs(out_dir, exist_ok=True)
    for stale in remove_stale_temp_dirs(out_dir, name):
        logger.warning(f"removed {stale}, left by an interrupted conversion")

    inter = inter.reset_index(drop=True)
    # category codes follow the sorted scenario names: the same split as splitting on the names, without strings
    codes = inter[scenario_col].astype(str).astype("category").cat.codes.to_numpy() if _is_text(inter[scenario_col]) \
        else inter[scenario_col].astype("category").cat.codes.to_numpy()
    pairs = pair_groups(inter, user_col, item_col, scenario_col)
    if split not in ("random", "time"):
        raise ConversionError(f"--split must be random or time, not '{split}'")
    if split == "time" and (order_col is None or order_col not in inter.columns):
        raise ConversionError(f"{source or name}: --split time needs an order column (--order_col: a position or "
                              f"timestamp per row); columns are {list(inter.columns)}")
    try:
        parts = scenario_split(codes, ratios=ratios, seed=seed, groups=pairs if groups is None else groups,
                               order=inter[order_col].to_numpy() if split == "time" else None,
                               users=inter[user_col].to_numpy())
    except ValueError as e:
        raise ConversionError(f"{source or name}: column '{order_col}': {e}") from None
    stats = scenario_stats(inter, user_col, item_col, label_col, scenario_col)
    stats["splits"] = {"method": split, "order_col": order_col if split == "time" else None,
                       "unit": "(user, item, scenario) pairs" if groups is None else "the converter's groups",
                       "repeated_pairs": int(len(pairs) - len(np.unique(pairs))),
                       "pair_overlap": pair_overlap(pairs, parts)}
    if any(stats["splits"]["pair_overlap"].values()):
        raise ConversionError(f"{source or name}: the split put one (user, item, scenario) pair into two parts "
                              f"({stats['splits']['pair_overlap']}); the converter's groups are wrong")
    for part, idx in zip(SPLIT_PARTS, parts):
        counts = inter[scenario_col].iloc[idx].value_counts().sort_index()
        stats["splits"][part] = {
            "interactions": int(len(idx)),
            "scenarios": {str(k): int(v) for k, v in counts.items() if v > 0},
        }
        missing = set(stats["scenarios"]) - set(stats["splits"][part]["scenarios"])
        if part == "train" and missing:
            raise ConversionError(f"{source or name}: scenario(s) {sorted(missing)} have no training rows "
                                  f"(too few interactions to split 8:1:1)")
    stats.update({"name": name, "source": source, "seed": seed, "ratios": list(ratios),
                  "created": time.strftime("%Y-%m-%dT%H:%M:%S")})
    if notes:
        stats["notes"] = notes  # what the converter counted (malformed lines, dropped duplicates, ...)

    with building_dir(out_dir, name) as tmp:
        # frames are made one at a time (a split is a copy of its rows; all three at once would double the memory)
        jobs = [(f"{name}.inter", lambda: inter)]
        jobs += [(f"{name}.{p}.inter", lambda idx=idx: inter.iloc[idx]) for p, idx in zip(SPLIT_PARTS, parts)]
        if user is not None:
            jobs.append((f"{name}.user", lambda: user))
        if item is not None:
            jobs.append((f"{name}.item", lambda: item))
        for filename, make in tqdm(jobs, desc=f"writing {name}", unit="file"):
            _write_atomic_file(make(), types, os.path.join(tmp, filename))
        with open(os.path.join(tmp, f"{name}.stats.json"), "w", encoding="utf-8") as f:
            json.dump(stats, f, indent=2)
        config = {
            "USER_ID_FIELD": user_col,
            "ITEM_ID_FIELD": item_col,
            "LABEL_FIELD": label_col,
            "SCENARIO_FIELD": scenario_col,
            "threshold": None,
            "benchmark_filename": list(SPLIT_PARTS),
            "load_col": load_col or {"inter": [user_col, item_col, label_col, scenario_col]},
        }
        config.update(extra_config or {})
        with open(os.path.join(tmp, f"{name}.yaml"), "w", encoding="utf-8") as f:
            f.write(f"# written by dataset_converters for {name} ({source}); override in your own YAML\n")
            yaml.safe_dump(config, f, sort_keys=False, allow_unicode=True)
    return final, stats


def add_common_args(parser, default_name):
    parser.add_argument("--out", required=True, help="DATA_DIR: the dataset is written to DATA_DIR/NAME/")
    parser.add_argument("--name", default=default_name, help=f"dataset name (default {default_name})")
    parser.add_argument("--seed", type=int, default=2020, help="seed of the fixed 8:1:1 split (default 2020)")
    parser.add_argument("--overwrite", action="store_true", help="replace DATA_DIR/NAME if it exists")


def finish(path, stats, name):
    print(format_stats(name, stats, {k: stats["splits"][k]["interactions"] for k in SPLIT_PARTS}))
    print(f"split: {stats['splits']['method']} by {stats['splits']['unit']}; pairs in two parts: "
          f"{stats['splits']['pair_overlap']}")
    print(f"written: {path}")
