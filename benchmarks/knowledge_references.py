"""What the default knowledge is worth against no-LLM references of increasing strength, and for which users.

    python benchmarks/knowledge_references.py --datasets ml-100k-msr amazon-art-office ml-1m-msr

For each dataset the knowledge of ``--option`` (default ``minilm-items``, the default knowledge; options as in
``benchmarks/knowledge_quality.py``; its store built or reused) is probed (neighbour probe, k = 20, validation rows)
as a default run sees it: normalised as ``knowledge_norm: auto`` chooses. It is set against three no-LLM profiles of
the user's training positives (TF-IDF): the item ids alone; the ids with the words of the item's categories (the
``item_text_fields`` after the title: amazon's category path, MovieLens' genres — the issue-15 reference, "a bag of
the user's training items / item categories"); and the ids with every word of the item texts (title included: the
reference the README has used since session 7, the strictest). Each difference comes with a paired bootstrap 95%
interval over users (200 resamples). The same, per third of the users by training positives (lightest first).

Writes ``benchmarks/results/knowledge-references.csv`` (one row per dataset and activity group, ``all`` for the
whole split; rows of other datasets kept), ``.md`` and ``.png``. Reads the training and validation splits only.
"""
import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks.knowledge_quality import built_store, interval, replaced_in_place  # noqa: E402
from recbole_llm4msr.atomic import atomic_path, atomic_write_csv, atomic_write_text, locked  # noqa: E402
from recbole_llm4msr.knowledge.files import DatasetFiles  # noqa: E402
from recbole_llm4msr.knowledge.report import (ITEMS_CATEGORIES, ITEMS_ONLY, PROFILE, choose_norm,  # noqa: E402
                                              knowledge_report)

REFERENCES = [ITEMS_ONLY, ITEMS_CATEGORIES, PROFILE]
SHORT = {ITEMS_ONLY: "items", ITEMS_CATEGORIES: "items + categories", PROFILE: "items + all words"}
FIELDS = ["dataset", "option", "knowledge_norm", "group", "positives", "users", "rows", "knowledge", "random",
          "items", "items_categories", "items_all_words", "minus_items", "minus_items_categories",
          "minus_items_all_words", "store"]


def measure(dataset, data_path, option="minilm-items"):
    """Rows of :data:`FIELDS` for ``dataset``: the whole split, then each activity group."""
    spec, store, _, _ = built_store(dataset, data_path, option)
    files = DatasetFiles.from_spec(spec)
    norm = choose_norm(store, files)["chosen"]
    rep = knowledge_report(store, files, norms=() if norm == "none" else (norm,), plot=False)
    name = "knowledge" if norm == "none" else f"knowledge ({norm})"
    whole = {"group": "all", "positives": "", "users": rep["geometry"]["users"], "rows": rep["neighbour_probe_rows"],
             "auc": dict(rep["neighbour_probe_auc"]),
             "vs": {PROFILE: rep["neighbour_probe_vs_profile"], **rep["neighbour_probe_vs_references"]}}
    if norm != "none":
        by = rep["neighbour_probe_by_norm"][norm]
        whole["auc"]["knowledge"] = by["auc"]
        whole["vs"] = {PROFILE: by["vs_profile"], **by["vs_references"]}
    groups = [whole] + [{"group": f"{g['group'] + 1} of {len(rep['neighbour_probe_by_activity'])}",
                         "positives": f"{g['positives'][0]}-{g['positives'][1]}", "users": g["users"],
                         "rows": g["rows"], "auc": {**g["auc"], "knowledge": g["auc"][name]},
                         "vs": {ref: d[name] for ref, d in g["vs"].items()}}
                        for g in rep["neighbour_probe_by_activity"]]
    rows = []
    for g in groups:
        row = {"dataset": dataset, "option": option, "knowledge_norm": norm, "group": g["group"],
               "positives": g["positives"], "users": g["users"], "rows": g["rows"], "knowledge": g["auc"]["knowledge"],
               "random": g["auc"]["random"], "store": os.path.basename(store.path)}
        for ref, column in zip(REFERENCES, ("items", "items_categories", "items_all_words")):
            row[column] = g["auc"].get(ref, "")
            row["minus_" + column] = interval(g["vs"].get(ref))
        rows.append(row)
    return rows


def write(path, rows):
    """The CSV at ``path``, the Markdown table and the PNG beside it, atomically."""
    atomic_write_csv(path, rows, FIELDS)
    lines = ["Default knowledge against no-LLM profiles of the user's training positives (TF-IDF): item ids; ids + "
             "the item's category words; ids + every word of the item texts. Neighbour probe (k = 20) on the "
             "validation rows, the knowledge normalised as `knowledge_norm: auto` chooses; knowledge − reference with "
             "its paired bootstrap 95% interval over users (200 resamples); groups: thirds of the users by training "
             "positives, lightest first (`benchmarks/knowledge_references.py`)", "",
             "| dataset | knowledge (norm) | users | group (positives) | rows | knowledge | random | items | "
             "items + categories | items + all words | − items [95% CI] | − items + categories | − items + all words |",
             "|---" * 13 + "|"]
    for r in rows:
        group = "all" if r["group"] == "all" else f"{r['group']} ({r['positives']})"
        lines.append("| " + " | ".join(str(v) for v in (
            r["dataset"], f"{r['option']} ({r['knowledge_norm']})", r["users"], group, r["rows"], r["knowledge"],
            r["random"], r["items"], r["items_categories"], r["items_all_words"], r["minus_items"],
            r["minus_items_categories"], r["minus_items_all_words"])) + " |")
    atomic_write_text(path[:-4] + ".md", "\n".join(lines) + "\n")
    plot(path[:-4] + ".png", rows)


def _parse(text):
    """``+0.0012 [-0.0030, +0.0051]`` -> (0.0012, -0.0030, 0.0051); None for an empty cell."""
    if not text:
        return None
    head, _, ci = str(text).partition(" [")
    lo, hi = ci.rstrip("]").split(", ")
    return float(head), float(lo), float(hi)


def plot(path, rows):
    """One panel per dataset: knowledge − each reference per activity group (and all users), with 95% intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    fig, axes = plt.subplots(1, len(datasets), figsize=(5.2 * len(datasets), 4.2), squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        mine = [r for r in rows if r["dataset"] == dataset]
        x = np.arange(len(mine))
        for j, column in enumerate(("minus_items", "minus_items_categories", "minus_items_all_words")):
            cells = [_parse(r[column]) for r in mine]
            at = [i for i, c in enumerate(cells) if c]
            mid = np.array([cells[i][0] for i in at])
            err = np.array([[cells[i][0] - cells[i][1] for i in at], [cells[i][2] - cells[i][0] for i in at]])
            ax.errorbar(x[at] + (j - 1) * 0.2, mid, yerr=err, fmt="o", capsize=3,
                        label="− " + SHORT[REFERENCES[j]])
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xticks(x)
        ax.set_xticklabels(["all" if r["group"] == "all" else f"{r['positives']}\npositives" for r in mine], fontsize=8)
        ax.set_title(f"{dataset} ({mine[0]['option']}, {mine[0]['knowledge_norm']})", fontsize=9)
        ax.set_ylabel("neighbour-probe AUC: knowledge − reference")
        ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", nargs="+", default=["ml-100k-msr", "amazon-art-office"])
    p.add_argument("--data_path", default=os.path.join(ROOT, "dataset"))
    p.add_argument("--option", default="minilm-items", help="the knowledge (see benchmarks/knowledge_quality.py)")
    p.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results"))
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "knowledge-references.csv")
    for dataset in args.datasets:
        new = measure(dataset, args.data_path, args.option)
        with locked(path):  # a re-measured dataset keeps its place in the table
            write(path, replaced_in_place(path, new, lambda r: (r["dataset"], r["option"]), lambda r: r["dataset"]))
        for r in new:
            print(r["dataset"], r["group"], r["positives"], r["knowledge"], r["minus_items"],
                  r["minus_items_categories"], r["minus_items_all_words"], flush=True)


if __name__ == "__main__":
    main()
