"""TSLRec's cost levers on one dataset: item-text length (``--item_text_words``) and batch size, measured on a seeded
sample of items with a given LLM (e.g. the fine-tuned model of a finished SFT stage), and the tokens an SFT sample
costs with each cap.

    python benchmarks/tslrec_items.py --dataset amazon-art-office --llm ~/.cache/.../model \\
        --categories ~/.cache/.../categories.json --words 0 12 --batch_size 32 64 --items 1024

For each (words, batch size): mean prompt tokens, items/s (after a warm-up batch) and the projection to every item
of the dataset; for each cap: mean tokens of the SFT prompts (``--pretrain_json``: the pipeline's pretrain.json with
the training sequences). ``words 0`` is the whole text. Writes ``benchmarks/results/tslrec-items-<dataset>.json`` and
``.md``; rows are appended as they are measured (rerunning measures again).
"""
import argparse
import json
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from recbole_llm4msr.atomic import atomic_write_json, atomic_write_text  # noqa: E402
from recbole_llm4msr.knowledge.files import DatasetFiles, dataset_settings  # noqa: E402
from recbole_llm4msr.knowledge.items import TEMPLATE, item_prompt  # noqa: E402
from recbole_llm4msr.knowledge.llm import KnowledgeLLM  # noqa: E402
from recbole_llm4msr.tslrec.samples import sft_samples  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="amazon-art-office")
    p.add_argument("--data_path", default=os.path.join(ROOT, "dataset"))
    p.add_argument("--llm", default="smollm2")
    p.add_argument("--categories", default=None, help="categories.json of a TSLRec run (adds the category line)")
    p.add_argument("--pretrain_json", default=None, help="pretrain.json of a TSLRec run (SFT prompt tokens)")
    p.add_argument("--words", type=int, nargs="+", default=[0, 12])
    p.add_argument("--batch_size", type=int, nargs="+", default=[32])
    p.add_argument("--items", type=int, default=1024)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results"))
    args = p.parse_args(argv)
    if any(w < 0 for w in args.words):
        raise SystemExit("--words: 0 (the whole text) or a positive number of words")

    files = DatasetFiles(args.dataset, os.path.join(args.data_path, args.dataset),
                         dataset_settings(args.dataset, args.data_path))
    categories = None
    if args.categories:
        with open(args.categories) as f:
            categories = {str(k): int(v) for k, v in json.load(f).items()}
    sequences = None
    if args.pretrain_json:
        with open(args.pretrain_json) as f:
            sequences = json.load(f)["sequences"]
    llm = KnowledgeLLM.load(args.llm)
    rng = np.random.default_rng(args.seed)
    all_texts = files.item_texts()
    if not all_texts:
        raise SystemExit(f"dataset '{args.dataset}' has no item text (item_text_fields)")
    # the items the pipeline embeds: RecBole's (those the clustering covered) when categories are given
    items = sorted(set(all_texts) & set(categories) if categories else all_texts, key=str)
    sample = [items[i] for i in sorted(rng.choice(len(items), size=min(args.items, len(items)), replace=False))]
    rows = []
    for words in args.words:
        texts = {str(k): v for k, v in files.item_texts(words or None).items()}
        prompts = [item_prompt(texts[i], None if categories is None else categories.get(i), TEMPLATE) for i in sample]
        reference = item_prompt("", None, TEMPLATE)
        tokens = float(np.mean([len(llm.token_ids(q)) for q in prompts]))
        sft_tokens = None
        if sequences is not None and categories is not None:
            samples = sft_samples(sequences, texts, categories, max(categories.values()) + 1, max_users=200,
                                  seed=args.seed)
            sft_tokens = float(np.mean([len(llm.token_ids(q)) + len(llm.token_ids(a)) for _, q, a, _ in samples]))
        for batch in args.batch_size:
            llm.encode(prompts[:batch], "prompt", batch, pooling="mean", reference=reference)  # warm-up
            t = time.perf_counter()
            llm.encode(prompts, "prompt", batch, pooling="mean", reference=reference)
            rate = len(prompts) / (time.perf_counter() - t)
            row = {"words": words or "all", "batch_size": batch, "items_measured": len(prompts),
                   "prompt_tokens_mean": round(tokens, 1), "items_per_s": round(rate, 2),
                   "projected_min_all_items": round(len(items) / rate / 60, 1), "items_total": len(items),
                   "sft_sample_tokens_mean": None if sft_tokens is None else round(sft_tokens, 1),
                   "example": prompts[0]}
            rows.append(row)
            print(json.dumps(row), flush=True)
    base = os.path.join(args.out, f"tslrec-items-{args.dataset}")
    meta = {"dataset": args.dataset, "llm": args.llm, "with_categories": categories is not None,
            "threads": int(os.environ.get("OMP_NUM_THREADS", 0)) or os.cpu_count(), "rows": rows}
    atomic_write_json(base + ".json", meta, indent=2)
    head = ["words", "batch_size", "prompt_tokens_mean", "items_per_s", "projected_min_all_items",
            "sft_sample_tokens_mean"]
    lines = [f"TSLRec item extraction on {args.dataset}: {rows[0]['items_measured']} seeded items, LLM {args.llm}, "
             f"{meta['threads']} threads; projection to all {len(items):,} items", "",
             "| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    lines += ["| " + " | ".join(str(r[h]) for h in head) + " |" for r in rows]
    atomic_write_text(base + ".md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
