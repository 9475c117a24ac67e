"""The neighbour probe with more rows: k-fold over the training split, beside the validation probe.

    python benchmarks/fold_probe.py --dataset ml-100k-msr [--folds 5]

The report's neighbour probe reads the validation rows only; on ml-100k-msr (943 users) its paired intervals are
about ±0.01 AUC wide, so the default knowledge is "level" with every no-LLM reference there. This asks the same
question of the training rows, which are about eight times as many: every user's training rows are dealt into
``--folds`` folds (seeded); for each fold the knowledge and the references are rebuilt from the other folds alone
(the default recipe's user vector is the mean of the user's liked items' vectors, so it is rebuilt exactly, then
normalised as ``knowledge_norm: auto`` chose for the store, statistics of the fold's vectors; the no-LLM bags are
TF-IDF of the other folds' positives) and the held-out fold's rows are scored from the user's nearest users' labels
in the other folds. Nothing a row's score uses knows its own label. The scores of all folds are pooled into one AUC
per option; differences carry paired bootstrap 95% intervals over users, as the report's do.

The references are the report's: a bag of item ids, ids + the words of the item's categories (issue 15's wording),
ids + every word of the item texts (the strict profile); and random vectors. A CSV (one row per dataset and probe:
``validation`` and ``training <k>-fold``; rows of other datasets kept) and its Markdown table. Reads the training and
validation splits only; works for stores whose user vectors are the mean of their item vectors
(``knowledge_user_vector: items``, the default).

``--dislikes`` (for datasets whose negatives are the users' own, e.g. ratings below 4 on MovieLens; not sampled
ones) adds two options that also read the user's disliked training items (label 0): ``items_dislikes``, the bag of
the liked items' ids beside the disliked ones' (``item_7`` and ``not_item_7`` are different tokens), and
``knowledge_dislikes``, the knowledge of the liked items beside the same knowledge of the disliked ones (each half
the mean of those items' vectors less the population's mean; a disliked item the store holds no vector for is
encoded by the store's model as the store encodes item texts). It asks whether the LLM's knowledge can use what a
bag of dislikes uses. Their tests (knowledge − items + dislikes, knowledge + dislikes − knowledge, knowledge +
dislikes − items + dislikes) are Benjamini-Hochberg corrected as a family of their own, so the table's other
p-values do not move; a second Markdown table, ``<out>-dislikes.md``.
"""
import argparse
import logging
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks.align_knowledge_words import normalise  # noqa: E402
from benchmarks.knowledge_quality import interval, merged_into, write_markdown  # noqa: E402
from benchmarks.profile_knowledge import add_source_args, dislike_bags, open_source  # noqa: E402
from recbole_llm4msr.compare import corrected  # noqa: E402
from recbole_llm4msr.knowledge.extract import user_means  # noqa: E402
from recbole_llm4msr.knowledge.report import (ITEMS_CATEGORIES, ITEMS_ONLY, PROFILE,  # noqa: E402
                                              activity_groups, auc, auc_difference, choose_norm, neighbour_scores,
                                              profile_vectors, reference_texts)

logger = logging.getLogger("fold_probe")
REFERENCES = {"items": ITEMS_ONLY, "items_categories": ITEMS_CATEGORIES, "items_all_words": PROFILE}
FIELDS = ["dataset", "probe", "group", "users", "rows", "knowledge_norm", "knowledge", "random", "items",
          "items_categories", "items_all_words", "minus_items", "minus_items_categories", "minus_items_all_words",
          "minus_random", "p_bh_items", "p_bh_items_categories", "p_bh_items_all_words",
          "knowledge_dislikes", "items_dislikes", "minus_items_dislikes", "dislikes_minus_knowledge",
          "dislikes_minus_items_dislikes", "p_bh_minus_items_dislikes", "p_bh_dislikes_minus_knowledge",
          "p_bh_dislikes_minus_items_dislikes"]
DISLIKE_TESTS = {"minus_items_dislikes": ("knowledge", "items_dislikes"),
                 "dislikes_minus_knowledge": ("knowledge_dislikes", "knowledge"),
                 "dislikes_minus_items_dislikes": ("knowledge_dislikes", "items_dislikes")}


def reference_bags(files):
    """{column: item texts} of the no-LLM references the dataset has (no category column without fields after the
    title)."""
    out = {}
    for column, name in REFERENCES.items():
        texts = reference_texts(files, name)
        if texts is not None:
            out[column] = texts
    return out


def user_folds(train, folds, seed=0):
    """A fold id per row of ``train``: each user's rows shuffled (seeded) and dealt round-robin, so every user with
    at least ``folds`` rows has rows in every fold and its folds differ in size by at most one."""
    if int(folds) < 2:
        raise ValueError(f"--folds {folds}: at least 2")
    order = np.random.default_rng(seed).permutation(len(train))
    ranks = np.empty(len(train), dtype=np.int64)
    ranks[order] = train["user"].iloc[order].groupby(train["user"].iloc[order].to_numpy()).cumcount().to_numpy()
    return ranks % int(folds)


def random_vectors(source, seed=0):
    """The random-vector reference: one standard normal vector per user of ``source``, its width."""
    return np.random.default_rng(seed).normal(size=(len(source.ids("user")), source.dim)).astype(np.float32)


class ItemVectors:
    """Every item's vector as the store made it: the store's item vectors, and for an item it holds none of (one
    nobody liked) the item's text encoded as the store encodes item texts (once, kept) by the model ``load()``
    returns (called only when an item needs it)."""

    def __init__(self, source, files, load=None):
        self.ids = [str(i) for i in source.ids("item")]
        self.vectors = np.asarray(source.vectors("item"), dtype=np.float32)
        self.source, self.texts, self.load = source, files.item_texts(), load

    def cover(self, items):
        """Encode the items of ``items`` that have no vector yet; -> how many were encoded."""
        from benchmarks.expanded_words import encoded_as_items

        have = set(self.ids)
        missing = sorted({str(i) for i in items} - have)
        if missing:
            if self.load is None:
                raise ValueError(f"{len(missing)} disliked item(s) have no vector in {self.source.path} (e.g. "
                                 f"{missing[:3]}) and no model was given to encode them")
            untexted = [i for i in missing if not str(self.texts.get(i) or "").strip()]
            if untexted:  # as the store does: the id stands in for a missing text, said once
                logger.warning(f"{len(untexted)} of {len(missing)} disliked items have no text (e.g. {untexted[:3]}): "
                               f"their vectors encode 'item <id>'")
            texts = [self.texts.get(i) or f"item {i}" for i in missing]
            logger.info(f"encoding {len(missing)} disliked items the store holds no vector for")
            self.vectors = np.vstack([self.vectors, encoded_as_items(self.load(), texts, self.source.header)])
            self.ids += missing
        return len(missing)


def dislike_vectors(users, train, items):
    """The knowledge of a user's liked items beside that of their disliked ones: [mean liked − population mean |
    mean disliked − population mean] (:class:`ItemVectors` ``items`` covering every item of ``train``)."""
    halves = []
    for liked in (True, False):
        part = train[(train["label"] > 0.5) == liked]
        per_user = part["item"].astype(str).groupby(part["user"], sort=False).agg(list).to_dict()
        v = user_means(users, per_user, items.ids, items.vectors)[0]
        halves.append(v - v.mean(0))
    return np.hstack(halves)


def option_scores(users, knowledge, train, rows, bags, k=20, random_vectors=None, items=None):
    """{option: neighbour-probe scores of ``rows``} from ``train``'s labels: the knowledge vectors, random vectors,
    and each reference bag (TF-IDF of ``train``'s positives)."""
    out = {"knowledge": neighbour_scores(users, knowledge, train, rows, k)}
    if random_vectors is not None:
        out["random"] = neighbour_scores(users, random_vectors, train, rows, k)
    for column, texts in bags.items():
        out[column] = neighbour_scores(users, profile_vectors(users, train, texts), train, rows, k)
    if items is not None:  # --dislikes
        out["knowledge_dislikes"] = neighbour_scores(users, dislike_vectors(users, train, items), train, rows, k)
        out["items_dislikes"] = neighbour_scores(users, dislike_bags(users, train), train, rows, k)
    return out


def fold_scores(source, files, norm, folds=5, k=20, seed=0, train=None, items=None):
    """(training rows, {option: score per row}): each fold's rows scored from the other folds (module docstring);
    ``train``: the training split, when the caller has read it; ``items``: :class:`ItemVectors` covering every
    training item, for the ``--dislikes`` options."""
    if source.header.get("user_vector") != "items" or "item" not in (source.header.get("kinds") or {}):
        raise ValueError(f"{source.path}: the fold probe rebuilds user vectors as the mean of their liked items' "
                         f"vectors, and this store's user vectors are not (user_vector "
                         f"{source.header.get('user_vector')!r}); give a store of the default recipe")
    users = list(source.ids("user"))
    item_ids = list(source.ids("item"))
    item_vectors = np.asarray(source.vectors("item"), dtype=np.float32)
    train = (files.train_interactions() if train is None else train).reset_index(drop=True)
    fold = user_folds(train, folds, seed)
    bags = reference_bags(files)
    noise = random_vectors(source, seed)
    scores = {}
    for f in range(int(folds)):
        held, rest = train[fold == f], train[fold != f]
        pos = rest[rest["label"] > 0.5]
        positives = pos["item"].astype(str).groupby(pos["user"], sort=False).agg(list).to_dict()
        knowledge = normalise(user_means(users, positives, item_ids, item_vectors)[0], norm)
        got = option_scores(users, knowledge, rest, held, bags, k, noise, items)
        for name, s in got.items():
            scores.setdefault(name, np.empty(len(train)))[fold == f] = s
        logger.info(f"fold {f + 1}/{folds}: {len(held)} rows, knowledge {auc(held['label'], got['knowledge'])}")
    return train, scores


def validation_scores(source, files, norm, train, k=20, seed=0, items=None):
    """(validation rows of the store's users, {option: scores}): the report's probe, the knowledge as the run sees
    it; ``train`` the training split."""
    users = list(source.ids("user"))
    valid = files.split_interactions("valid")
    known = valid[valid["user"].isin(set(users))]
    knowledge = normalise(np.asarray(source.vectors("user"), dtype=np.float32), norm)
    return known, option_scores(users, knowledge, train, known, reference_bags(files), k, random_vectors(source, seed),
                                items)


def table_row(dataset, probe, rows, scores, norm, resamples=200, seed=0, group="all"):
    """One row of :data:`FIELDS`: each option's AUC and knowledge − each other option with its interval."""
    y, who = rows["label"].to_numpy(), rows["user"].to_numpy()
    out = {"dataset": dataset, "probe": probe, "group": group, "users": len(np.unique(who)), "rows": len(rows),
           "knowledge_norm": norm}
    for name in ("knowledge", "random", *REFERENCES):
        out[name] = auc(y, scores[name]) if name in scores else None
        if name != "knowledge":
            d = auc_difference(y, scores["knowledge"], scores[name], who, resamples, seed) if name in scores else None
            out[f"minus_{name}"] = interval(d)
            if name in REFERENCES:
                # raw until :func:`with_correction`; a bootstrap p of 0 counts as 1 / resamples (an upper bound)
                out[f"p_bh_{name}"] = None if d is None else max(d["p"], 1.0 / d["resamples"])
    if "knowledge_dislikes" in scores:
        for name in ("knowledge_dislikes", "items_dislikes"):
            out[name] = auc(y, scores[name])
        for column, (a, b) in DISLIKE_TESTS.items():
            d = auc_difference(y, scores[a], scores[b], who, resamples, seed)
            out[column], out[f"p_bh_{column}"] = interval(d), max(d["p"], 1.0 / d["resamples"])
    return out


def with_correction(rows):
    """``rows`` with every knowledge − reference p-value Benjamini-Hochberg adjusted over all of them (one family:
    the dataset's probes, groups and references), and the ``--dislikes`` tests' over theirs (a family of their own)."""
    for names in ([f"p_bh_{name}" for name in REFERENCES], [f"p_bh_{name}" for name in DISLIKE_TESTS]):
        where = [(r, key) for r in rows for key in names if r.get(key) is not None]
        for (r, key), p in zip(where, corrected([r[key] for r, key in where])):
            r[key] = round(p, 4)
    return rows


def measure(source, files, folds=5, k=20, seed=0, resamples=200, groups=3, items=None):
    """The validation rows and the training k-fold rows for ``source``'s dataset: all users, then each activity
    group (the report's :func:`activity_groups`: users cut by their number of training positives; ``groups`` 0:
    none). ``items``: :class:`ItemVectors`, to add the ``--dislikes`` options."""
    norm = choose_norm(source, files, k=k)["chosen"]
    dataset, train = source.header["dataset"], files.train_interactions()
    if items is not None:
        items.cover(train["item"])
    out = []
    for probe, (rows, scores) in (("validation", validation_scores(source, files, norm, train, k, seed, items)),
                                  (f"training {folds}-fold",
                                   fold_scores(source, files, norm, folds, k, seed, train, items))):
        out.append(table_row(dataset, probe, rows, scores, norm, resamples, seed))
        if groups:
            member, per_row = activity_groups(rows, train, groups)
            for g in np.unique(member):
                m = member == g
                label = (f"{g + 1} of {len(np.unique(member))} "
                         f"({int(per_row[m].min())}-{int(per_row[m].max())} positives)")
                out.append(table_row(dataset, probe, rows[m], {n: v[m] for n, v in scores.items()}, norm, resamples,
                                     seed, label))
    return with_correction(out)


def with_p(row, name, column=None):
    """The ``minus_<name>`` cell (or ``column``) with its adjusted p-value."""
    column = column or f"minus_{name}"
    cell, p = row.get(column), row.get(f"p_bh_{column}" if column != f"minus_{name}" else f"p_bh_{name}")
    return cell if not cell or p in (None, "") else f"{cell} (p_bh {p})"


def write(path, rows):
    """Merge ``rows`` into the CSV at ``path`` (a dataset's rows replace its earlier ones), the Markdown beside it."""
    merged = merged_into(path, rows, FIELDS)
    write_markdown(
        path[:-4] + ".md",
        "The neighbour probe (k = 20) on the validation rows and, k-fold, on the training rows "
        "(`benchmarks/fold_probe.py`: each fold scored from the other folds, knowledge and references rebuilt without "
        "it). Knowledge: the default store's user vectors (the mean of the liked items' MiniLM vectors) as "
        "`knowledge_norm: auto` normalises them. Differences: paired bootstrap 95% interval over users; p_bh: the "
        "bootstrap p-value (0 counted as 1 / resamples), Benjamini-Hochberg adjusted over every knowledge − reference "
        "test of the dataset (both probes, every group, three references)",
        ["dataset", "probe", "users (training positives)", "rows", "knowledge (norm)", "random", "items",
         "items + categories", "items + every word", "− items", "− items + categories", "− items + every word",
         "− random"],
        [[r["dataset"], r["probe"],
          r["users"] if r.get("group") in (None, "", "all") else f"{r['users']}: {r['group']}", r["rows"],
          f"{r['knowledge']} ({r['knowledge_norm']})", r["random"], r["items"], r["items_categories"],
          r["items_all_words"], *(with_p(r, name) for name in REFERENCES), r["minus_random"]] for r in merged])
    disliked = [r for r in merged if r.get("knowledge_dislikes") not in (None, "")]
    if disliked:
        write_markdown(
            path[:-4] + "-dislikes.md",
            "The neighbour probe with the users' dislikes (`benchmarks/fold_probe.py --dislikes`; rows as in "
            "`fold-probe.md`). items + dislikes: TF-IDF of the liked items' ids beside the disliked ones' (a different "
            "token each); knowledge + dislikes: [mean of the liked items' vectors | mean of the disliked items' "
            "vectors], each less the population's mean. Paired bootstrap 95% intervals over users; p_bh: "
            "Benjamini-Hochberg over these three tests of every row of the dataset (a family of its own)",
            ["dataset", "probe", "users (training positives)", "rows", "knowledge", "items", "items + dislikes",
             "knowledge + dislikes", "knowledge − items + dislikes", "knowledge + dislikes − knowledge",
             "knowledge + dislikes − items + dislikes"],
            [[r["dataset"], r["probe"],
              r["users"] if r.get("group") in (None, "", "all") else f"{r['users']}: {r['group']}", r["rows"],
              r["knowledge"], r["items"], r["items_dislikes"], r["knowledge_dislikes"],
              *(with_p(r, None, column) for column in DISLIKE_TESTS)] for r in disliked])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_source_args(p)
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resamples", type=int, default=200)
    p.add_argument("--groups", type=int, default=3, help="activity groups (thirds of the users by training "
                   "positives) for rows of their own; 0: none")
    p.add_argument("--dislikes", action="store_true", help="also the options that read the users' disliked "
                   "training items (label 0): for datasets whose negatives are the users' own (module docstring)")
    p.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "fold-probe.csv"))
    args = p.parse_args(argv)
    if args.folds < 2:
        raise SystemExit(f"--folds {args.folds}: at least 2")
    spec, source, files, _, _ = open_source(args)
    items = None
    if args.dislikes:
        from recbole_llm4msr.knowledge.extract import load_llm

        if source.header.get("llm") != spec.llm:
            raise SystemExit(f"--dislikes: {source.path} was made by '{source.header.get('llm')}', not '{spec.llm}' "
                             f"(the dataset's knowledge_llm): disliked items must be encoded by the model that made "
                             f"the item vectors")
        items = ItemVectors(source, files, lambda: load_llm(spec))
    rows = measure(source, files, args.folds, args.k, args.seed, args.resamples, args.groups, items)
    write(args.out, rows)
    logger.info(f"wrote {args.out}")
    return rows


if __name__ == "__main__":
    main()
