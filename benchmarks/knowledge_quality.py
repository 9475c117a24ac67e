"""Knowledge quality per extraction option: one knowledge report (recbole_llm4msr.knowledge.report) per option.

    python benchmarks/knowledge_quality.py --dataset ml-100k-msr --options smollm2-last smollm2-mean minilm
    python benchmarks/knowledge_quality.py --dataset amazon-art-office --options minilm smollm2-last:2000

An option is ``<llm>-<pooling>`` for the decoder on the user-level prompt (``smollm2-last``, ``smollm2-mean``,
``smollm2-generate``), ``minilm`` (the embedded sentence encoder on the user-level prompt = the history alone),
``minilm-instructions`` (the encoder on the decoder's prompts, instructions included), ``minilm-items`` /
``smollm2-items`` (``user_vector: items``: a user = the mean of the vectors of the texts of the user's training
positives, the default since session 9), with ``:N`` to extract only the first N users (the probes then run on those users;
the table says how many), and ``NAME=PATH`` (or ``NAME=PATH:N``) for a local model directory (an aligned model from ``llm4msr-align``: the row
is called NAME, last-token pooling of the user prompt; a NAME ending in ``-items`` takes ``user_vector: items``). ``--device cuda`` extracts on a GPU (bf16, the same store a run with
``llm_device: cuda`` finds). Stores are built (or reused: resumable) in the default knowledge cache; every report row is
appended to ``benchmarks/results/knowledge-quality-<dataset>.csv`` as soon as it is measured, and the Markdown table
is rewritten. The neighbour probe is also run on the standardised and on the whitened vectors (``knowledge_norm:
standardize | whiten``, as a run applies them at load time), and each probe's difference to the no-LLM profile's comes
with a paired bootstrap 95% interval over users (200 resamples): is the knowledge better, worse, or within the noise?

``--versus A B`` (repeatable; options as above, their stores built or reused) compares two knowledges directly: the
neighbour probe of both on the validation rows of the users both hold, raw / standardised / whitened, with A - B and
its paired bootstrap interval (``recbole_llm4msr.knowledge.report.probe_versus``), into
``benchmarks/results/knowledge-versus-<dataset>.csv`` (+ ``.md``): e.g. an aligned model against its base model.
"""
import argparse
import csv
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from recbole_llm4msr.atomic import atomic_write_csv, atomic_write_text, locked  # noqa: E402
from recbole_llm4msr.knowledge.extract import build_knowledge  # noqa: E402
from recbole_llm4msr.knowledge.files import DatasetFiles, dataset_settings  # noqa: E402
from recbole_llm4msr.knowledge.prompts import TEMPLATE_DIR  # noqa: E402
from recbole_llm4msr.knowledge.report import knowledge_report, probe_versus  # noqa: E402
from recbole_llm4msr.knowledge.spec import KnowledgeSpec  # noqa: E402
from recbole_llm4msr.knowledge.store import KnowledgeStore  # noqa: E402

FIELDS = ["option", "users", "extract_s", "dim", "mean_cosine_raw", "mean_cosine_standardized", "effective_rank",
          "mean_share", "probe_knowledge", "probe_knowledge_standardized", "probe_random", "probe_profile",
          "attribute_probes", "probe_knowledge_whitened", "raw_minus_profile", "standardized_minus_profile",
          "whitened_minus_profile", "store"]
LATER = {"probe_knowledge_whitened", "raw_minus_profile", "standardized_minus_profile", "whitened_minus_profile"}
# ^ columns added in session 12: rows measured before have them empty


def spec_for(dataset, data_path, option, device="cpu", batch_size=16):
    head, _, tail = option.rpartition(":")
    name, limit = (head, int(tail)) if head and tail.isdigit() else (option, None)
    kw = dict(device=device, batch_size=batch_size, limit_users=limit, user_vector="prompt")
    if "=" in name:  # NAME=PATH: a local model directory (NAME ending in -items: user_vector items)
        label, _, path = name.partition("=")
        kw["llm"] = path
        if label.endswith("-items"):
            kw["user_vector"] = "items"
    elif name.endswith("-items"):  # user_vector: items (the default)
        kw.update(llm=name[:-len("-items")], user_vector="items")  # the mode follows the llm (encoder for minilm)
    elif name == "minilm":  # the encoder templates: the user prompt is the history alone
        kw.update(llm="minilm", mode="encoder")
    elif name == "minilm-instructions":  # the decoder's templates (instructions + history), as before the encoder's
        kw.update(llm="minilm", mode="encoder", template_dir=TEMPLATE_DIR)
    else:
        llm, _, how = name.partition("-")
        kw.update(llm=llm)
        kw.update({"generate": {"mode": "generate"}, "mean": {"pooling": "mean"}, "last": {}}[how or "last"])
    return KnowledgeSpec(dataset=dataset, data_path=data_path, settings=dataset_settings(dataset, data_path), **kw)


VERSUS_FIELDS = ["a", "b", "users", "rows", "norm", "probe_a", "probe_b", "a_minus_b", "store_a", "store_b"]


def built_store(dataset, data_path, option, device="cpu", batch_size=16):
    """(spec, store, build summary, seconds) of ``option``: its store built, resumed or reused (finished)."""
    spec = spec_for(dataset, data_path, option, device, batch_size)
    start = time.perf_counter()
    summary = build_knowledge(spec)
    return spec, KnowledgeStore(summary["cache"]), summary, time.perf_counter() - start


def versus(dataset, data_path, a, b, device="cpu", batch_size=16):
    """Rows of :data:`VERSUS_FIELDS` (one per normalisation): the stores of options ``a`` and ``b`` (built, or
    reused when finished) on the same validation rows."""
    (spec, store_a, _, _), (_, store_b, _, _) = (built_store(dataset, data_path, o, device, batch_size) for o in (a, b))
    out = probe_versus(store_a, store_b, DatasetFiles.from_spec(spec))
    return [{"a": a.partition("=")[0], "b": b.partition("=")[0], "users": out["users"], "rows": out["rows"],
             "norm": norm, "probe_a": r["a"], "probe_b": r["b"], "a_minus_b": interval(r["a_minus_b"]),
             "store_a": os.path.basename(store_a.path), "store_b": os.path.basename(store_b.path)}
            for norm, r in out["by_norm"].items()]


def record_versus(path, new, dataset):
    """Replace the rows of ``new``'s (a, b) pairs in the table at ``path`` and rewrite it (CSV + Markdown)."""
    with locked(path):
        rows = replaced(path, new, lambda r: (r["a"], r["b"]))
        atomic_write_csv(path, rows, VERSUS_FIELDS)
        lines = [f"Knowledge A against knowledge B on {dataset}: neighbour probe (k = 20) on the validation rows of the "
                 f"users both stores hold, as a run with each knowledge_norm sees the vectors; A − B with its paired "
                 f"bootstrap 95% interval over users (200 resamples)", "",
                 "| A | B | users | rows | knowledge_norm | probe A | probe B | A − B [95% CI] |", "|---" * 8 + "|"]
        lines += ["| " + " | ".join(str(r[k]) for k in VERSUS_FIELDS[:8]) + " |" for r in rows]
        atomic_write_text(path[:-4] + ".md", "\n".join(lines) + "\n")
        return "\n".join(lines[-len(new):])


def measure(dataset, data_path, option, device="cpu", batch_size=16):
    spec, store, summary, seconds = built_store(dataset, data_path, option, device, batch_size)
    files = DatasetFiles.from_spec(spec)
    rep = knowledge_report(store, files, out_dir=store.path, norms=("standardize", "whiten"))
    users = list(store.ids("user"))
    by_norm = rep["neighbour_probe_by_norm"]
    g, p = rep["geometry"], rep["neighbour_probe_auc"]
    attrs = "; ".join(f"{a}: {v['knowledge']} (profile {v['profile (no LLM)']})" for a, v in rep["attribute_auc"].items())
    return {"option": option.partition("=")[0], "users": len(users), "extract_s": round(seconds, 1) if not summary.get("reused") else "",
            "dim": store.dim, "mean_cosine_raw": g["mean_cosine_raw"],
            "mean_cosine_standardized": g["mean_cosine_standardized"], "effective_rank": g["effective_rank"],
            "mean_share": g["mean_share"], "probe_knowledge": p["knowledge"],
            "probe_knowledge_standardized": by_norm["standardize"]["auc"],
            "probe_random": p["random"], "probe_profile": p["profile (no LLM)"], "attribute_probes": attrs or "–",
            "probe_knowledge_whitened": by_norm["whiten"]["auc"],
            "raw_minus_profile": interval(rep["neighbour_probe_vs_profile"]),
            "standardized_minus_profile": interval(by_norm["standardize"]["vs_profile"]),
            "whitened_minus_profile": interval(by_norm["whiten"]["vs_profile"]), "store": os.path.basename(store.path)}


def interval(d):
    """``+0.0012 [-0.0030, +0.0051]``: a difference and its paired bootstrap 95% interval."""
    return "" if d is None else f"{d['difference']:+.4f} [{d['ci95'][0]:+.4f}, {d['ci95'][1]:+.4f}]"


def write_tables(path, rows, dataset):
    """``path`` (CSV) and the Markdown table beside it, atomically."""
    atomic_write_csv(path, rows, FIELDS)
    lines = [f"Knowledge quality on {dataset} (neighbour probe: AUC on the validation rows of the users in "
             f"the store, k = 20; attribute probes: 5-fold AUC, PCA 32 + logistic regression)", "",
             "| option | users | extract s | dim | mean cos raw | mean cos std | eff. rank | mean share | probe | "
             "probe (standardised) | probe random | probe no-LLM profile | attributes (profile) | probe (whitened) | "
             "raw − profile [95% CI] | standardised − profile | whitened − profile |",
             "|---" * 17 + "|"]
    for r in rows:
        lines.append("| " + " | ".join("" if r.get(k) is None else str(r[k]) for k in FIELDS[:-1]) + " |")
    atomic_write_text(path[:-4] + ".md", "\n".join(lines) + "\n")
    return lines[-1]


def read_rows(path):
    if not os.path.isfile(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def replaced(path, new, key):
    """The rows of the table at ``path`` (re-read: call under its lock) whose ``key`` no row of ``new`` has, then
    ``new``."""
    keys = {key(r) for r in new}
    return [r for r in read_rows(path) if key(r) not in keys] + new


def replaced_in_place(path, new, key, group=None):
    """:func:`replaced`, with each group of rows (``group(row)``, e.g. the dataset; default ``key``) kept where it was
    in the table: re-measured rows take their group's place, a new group goes last (call under the table's lock)."""
    group = group or key
    before = [group(r) for r in read_rows(path)]
    order = {g: n for n, g in enumerate(dict.fromkeys(before + [group(r) for r in new]))}
    return sorted(replaced(path, new, key), key=lambda r: order[group(r)])  # stable: a group's rows in their order


def merged_into(path, new, fields, key=lambda r: r["dataset"]):
    """Under the table's lock: :func:`replaced_in_place` ``new`` into the CSV at ``path`` and rewrite it atomically;
    returns the merged rows (for the Markdown beside it)."""
    with locked(path):
        merged = replaced_in_place(path, new, key)
        atomic_write_csv(path, merged, fields)
    return merged


def write_markdown(path, caption, header, rows):
    """A Markdown table at ``path``, atomically: ``caption``, then ``header`` (column titles) and one line per row of
    ``rows`` (cell values; None and "" shown as "—")."""
    lines = [caption, "", "| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    lines += ["| " + " | ".join("—" if v in (None, "") else str(v) for v in row) + " |" for row in rows]
    atomic_write_text(path, "\n".join(lines) + "\n")


def record(path, new, dataset):
    """Replace the rows of ``new``'s options in the table at ``path`` (re-read under the lock) and rewrite it."""
    with locked(path):
        return write_tables(path, replaced(path, new, lambda r: r["option"]), dataset)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="ml-100k-msr")
    p.add_argument("--data_path", default=os.path.join(ROOT, "dataset"))
    p.add_argument("--options", nargs="*", default=None,
                   help="default: smollm2-last smollm2-mean minilm (none when only --versus is given)")
    p.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results"))
    p.add_argument("--device", default="cpu", help="where the LLM runs: cpu, cuda")
    p.add_argument("--batch_size", type=int, default=16, help="prompts per forward pass (not part of the store's key)")
    p.add_argument("--merge", nargs="*", default=[], help="CSV files of this script measured elsewhere (another "
                                                           "machine): their rows replace rows of the same option")
    p.add_argument("--versus", nargs=2, action="append", default=[], metavar=("A", "B"),
                   help="compare two options' knowledge on the same rows (A - B, paired bootstrap); repeatable")
    args = p.parse_args(argv)
    if args.options is None:
        args.options = [] if args.versus else ["smollm2-last", "smollm2-mean", "minilm"]
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, f"knowledge-quality-{args.dataset}.csv")
    for other in args.merge:
        with open(other, newline="") as f:
            reader = csv.DictReader(f)
            new = list(reader)
            missing = set(FIELDS) - LATER - set(reader.fieldnames or ())
        if missing:
            raise SystemExit(f"--merge {other}: not a knowledge-quality CSV (no column {sorted(missing)})")
        print(record(path, new, args.dataset), flush=True)
    for option in args.options:
        print(record(path, [measure(args.dataset, args.data_path, option, args.device, args.batch_size)],
                     args.dataset), flush=True)
    for a, b in args.versus:
        print(record_versus(os.path.join(args.out, f"knowledge-versus-{args.dataset}.csv"),
                            versus(args.dataset, args.data_path, a, b, args.device, args.batch_size), args.dataset),
              flush=True)


if __name__ == "__main__":
    main()
