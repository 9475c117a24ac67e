"""TSLRec pipeline cost and item-vector quality on one dataset (targets: whole pipeline <= 45 min, SFT <= 20 min on
2 CPU cores for amazon-art-office).

    python benchmarks/tslrec.py --dataset amazon-art-office [--max_users 320] [--pretrain_epochs 8] [--raw]
        [--item_text_words N] [--name SUFFIX]

Runs (or resumes, or reuses) ``recbole_llm4msr.tslrec.pipeline.run`` with the settings below, then the raw-LLM
ablation's store (``--raw``), and measures a held-out co-purchase probe of every item representation: for each
user, the pair (last training item, validation item) against (last training item, a random item); AUC of the cosine
similarity. Representations: the pre-trained SASRec's item embeddings, the raw LLM's vectors, the TSLRec vectors.
Writes ``benchmarks/results/tslrec-<dataset>[-SUFFIX].json`` and ``.md`` (``--name`` keeps several recipes apart).

    python benchmarks/tslrec.py --dataset amazon-art-office --probe_store PATH [--probe_store PATH2 ...]

only runs the probe, on item stores built elsewhere (e.g. on a GPU, where the pipeline is minutes): the training
sequences and the SASRec embeddings are read from this machine's pre-training stage of the same settings (it must have
run: the pipeline's stage 0 is resumable), each store is one row (``NAME=PATH`` names it). Writes
``benchmarks/results/tslrec-probe-<dataset>.json`` and ``.md``.
"""
import argparse
import json
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from recbole_llm4msr.align.finetune import LoraSettings  # noqa: E402
from recbole_llm4msr.atomic import atomic_write_json, atomic_write_text  # noqa: E402
from recbole_llm4msr.knowledge.report import auc  # noqa: E402
from recbole_llm4msr.knowledge.store import KnowledgeStore  # noqa: E402
from recbole_llm4msr.tslrec.pipeline import default_out, run  # noqa: E402
from recbole_llm4msr.tslrec.settings import TSLRecSettings  # noqa: E402

# the sequential model of the benchmark and of benchmarks/compare_tslrec.sh (smaller than RecBole's default SASRec
# so that a CPU can run it: 2 layers of width 32, the latest 20 items)
SASREC = {"hidden_size": 32, "inner_size": 64, "n_layers": 2, "n_heads": 2, "MAX_ITEM_LIST_LENGTH": 20,
          "train_batch_size": 2048, "stopping_step": 3}


def cpu_model():
    """The CPU's model name and whether it has AMX bf16 units (timings differ several-fold between machines with the
    same core count: the LLM runs in bf16 where the CPU supports it)."""
    try:
        with open("/proc/cpuinfo") as f:
            lines = f.read().splitlines()
    except OSError:
        return "unknown"
    name = next((x.split(":", 1)[1].strip() for x in lines if x.startswith("model name")), "unknown")
    flags = next((x.split(":", 1)[1].split() for x in lines if x.startswith("flags")), [])
    return name + (" with AMX-BF16" if "amx_bf16" in flags else "")


def held_out_pairs(sequences, full, rng):
    """(anchor, validation item) per user whose validation item follows its training part, and random partners."""
    items = sorted({i for s in full.values() for i in s})
    anchors, positives, negatives = [], [], []
    for u, train in sequences.items():
        seq = full.get(u, [])
        if len(seq) >= len(train) + 2 and seq[: len(train)] == train and train:
            anchors.append(train[-1])
            positives.append(seq[len(train)])
            negatives.append(items[rng.integers(len(items))])
    return anchors, positives, negatives


def probe(table, anchors, positives, negatives):
    """AUC of cos(anchor, positive) vs cos(anchor, negative) of the centred vectors; ``table``: {item: vector}.
    Returns (AUC, pairs used)."""
    mean = np.mean(np.stack(list(table.values())), 0)
    keep = [k for k, triple in enumerate(zip(anchors, positives, negatives)) if all(i in table for i in triple)]

    def centred(items):
        return np.stack([table[items[k]] for k in keep]) - mean

    a, p, n = centred(anchors), centred(positives), centred(negatives)
    norm = np.linalg.norm(a, axis=1)
    pos = (a * p).sum(1) / (norm * np.linalg.norm(p, axis=1) + 1e-9)
    neg = (a * n).sum(1) / (norm * np.linalg.norm(n, axis=1) + 1e-9)
    labels = np.concatenate([np.ones(len(keep)), np.zeros(len(keep))])
    return round(float(auc(labels, np.concatenate([pos, neg]))), 4), len(keep)


def store_table(path):
    store = KnowledgeStore(path)
    vectors = np.asarray(store.vectors("item"), dtype=np.float32)
    return {t: vectors[i] for i, t in enumerate(store.ids("item"))}


def full_sequences(data_path, dataset):
    """Every user's whole positive sequence in time order, from the dataset's .inter file (for the held-out pairs)."""
    from dataset_converters.writer import read_atomic

    df = read_atomic(os.path.join(data_path, dataset, f"{dataset}.inter"))
    if "label" in df.columns:
        df = df[df["label"].astype(float) > 0.5]
    df = df.assign(t=df["timestamp"].astype(float)).sort_values(["user_id", "t"], kind="stable")
    return {u: list(g["item_id"]) for u, g in df.groupby("user_id", sort=False)}


def co_purchase_probes(args, pipeline_out, stores):
    """{representation: (AUC, pairs)}: the pre-trained SASRec's embeddings (of ``pipeline_out``), each store
    ({name: path}), random vectors."""
    with open(os.path.join(pipeline_out, "pretrain.json")) as f:
        sequences = json.load(f)["sequences"]
    full = full_sequences(args.data_path, args.dataset)
    anchors, positives, negatives = held_out_pairs(sequences, full, np.random.default_rng(0))
    with np.load(os.path.join(pipeline_out, "pretrain.npz")) as z:
        sasrec = {str(tk): v for tk, v in zip(z["tokens"], z["embeddings"])}
    probes = {"SASRec item embeddings (pre-trained)": probe(sasrec, anchors, positives, negatives)}
    for name, path in stores.items():
        probes[name] = probe(store_table(path), anchors, positives, negatives)
    rng = np.random.default_rng(1)
    dim = len(next(iter(sasrec.values())))
    probes["random vectors"] = probe({k: rng.normal(size=dim) for k in sasrec}, anchors, positives, negatives)
    return probes


def probe_table(probes):
    """The Markdown lines of the co-purchase probe's results."""
    return (["Held-out co-purchase probe (AUC of cosine(last training item, validation item) against a random item; "
             "higher = the representation places items bought one after the other together):", "",
             "| representation | AUC | pairs |", "|---|---|---|"]
            + [f"| {k} | {v[0]} | {v[1]} |" for k, v in probes.items()])


def probe_only(args, pipeline_out):
    if not os.path.isfile(os.path.join(pipeline_out, "pretrain.npz")):
        raise SystemExit(f"--probe_store reads the pre-training stage of these settings from {pipeline_out}, which has "
                         f"not run here: run this script once without --probe_store (its stage 0 is resumable)")
    stores = {}
    for spec in args.probe_store:
        name, _, path = spec.rpartition("=")
        stores[name or os.path.basename(path.rstrip("/"))] = path
    probes = co_purchase_probes(args, pipeline_out, stores)
    result = {"dataset": args.dataset, "sasrec_from": pipeline_out, "stores": stores, "co_purchase_probe": probes}
    os.makedirs(args.out, exist_ok=True)
    atomic_write_json(os.path.join(args.out, f"tslrec-probe-{args.dataset}.json"), result, indent=2)
    lines = [f"# TSLRec item vectors on {args.dataset}: co-purchase probe", "",
             f"SASRec embeddings from {pipeline_out} (this machine's pre-training); stores: "
             + "; ".join(f"{k} = `{v}`" for k, v in stores.items()), ""] + probe_table(probes)
    atomic_write_text(os.path.join(args.out, f"tslrec-probe-{args.dataset}.md"), "\n".join(lines) + "\n")
    print("\n".join(lines))
    return result


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="amazon-art-office")
    p.add_argument("--data_path", default=os.path.join(ROOT, "dataset"))
    p.add_argument("--k", type=int, default=32)
    p.add_argument("--max_users", type=int, default=320)
    p.add_argument("--max_history", type=int, default=10)
    p.add_argument("--pretrain_epochs", type=int, default=8)
    p.add_argument("--item_text_words", type=int, default=None,
                   help="at most N words of each item's text (the CPU cost cap; default: the whole text)")
    p.add_argument("--raw", action="store_true", help="also build the raw-LLM store (the ablation)")
    p.add_argument("--name", default="", help="suffix of the result files (tslrec-<dataset>-<name>.md)")
    p.add_argument("--probe_store", nargs="+", default=None, metavar="[NAME=]PATH",
                   help="only probe these item stores (see above)")
    p.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results"))
    args = p.parse_args(argv)
    common = dict(dataset=args.dataset, data_path=args.data_path, k=args.k, max_users=args.max_users,
                  max_history=args.max_history, pretrain_epochs=args.pretrain_epochs,
                  item_text_words=args.item_text_words,
                  pretrain_config=dict(SASREC), lora=LoraSettings(max_length=320))
    if args.probe_store:
        return probe_only(args, default_out(TSLRecSettings(**common)))
    t = time.perf_counter()
    summary = run(TSLRecSettings(**common))
    wall = time.perf_counter() - t
    result = {"dataset": args.dataset, "threads": os.environ.get("OMP_NUM_THREADS", "all"), "cpus": os.cpu_count(),
              "cpu_model": cpu_model(), "tslrec": summary, "wall_s_this_call": round(wall, 1)}
    stores = {"TSLRec LLM item vectors": summary["store"]}
    if args.raw:
        result["raw"] = run(TSLRecSettings(**dict(common, sft=False)))
        stores["raw LLM item vectors (no SFT)"] = result["raw"]["store"]
    probes = result["co_purchase_probe"] = co_purchase_probes(args, summary["out"], stores)
    os.makedirs(args.out, exist_ok=True)
    base = os.path.join(args.out, f"tslrec-{args.dataset}" + (f"-{args.name}" if args.name else ""))
    atomic_write_json(base + ".json", result, indent=2)
    s = summary["seconds"]
    lines = [f"# TSLRec pipeline on {args.dataset}", "",
             f"{os.cpu_count()} CPU cores ({result['cpu_model']}, OMP_NUM_THREADS={result['threads']}); SASRec "
             f"{SASREC}, at most {args.pretrain_epochs} epochs, k={args.k}, item text "
             f"{'whole' if args.item_text_words is None else f'capped at {args.item_text_words} words'}, "
             f"{summary['sft']['samples']} SFT users (one sample each, latest {args.max_history} items), LoRA "
             f"r=8 1 epoch ({summary['sft']['steps']} steps), {summary['items']} items embedded.", "",
             "| stage | seconds |", "|---|---|"]
    lines += [f"| {k[:-2]} | {v} |" for k, v in s.items()]
    lines += ["", f"Targets: whole pipeline <= 2700 s ({'met' if s['total_s'] <= 2700 else 'NOT met'}: "
                  f"{s['total_s']} s), SFT <= 1200 s ({'met' if s['sft_s'] <= 1200 else 'NOT met'}: {s['sft_s']} s). "
                  f"SFT loss {summary['sft']['first_loss']} -> {summary['sft']['last_loss']}.", ""] + probe_table(probes)
    atomic_write_text(base + ".md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
