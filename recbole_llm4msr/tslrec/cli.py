"""``llm4msr-tslrec``: TSLRec's pipeline -- pre-train a sequential model, cluster its item embeddings into latent
categories, fine-tune the LLM (LoRA) to reconstruct each user's category distribution, embed every item.

    llm4msr-tslrec --dataset=amazon-art-office --backbone=SASRec --k=32 --llm=smollm2 --out=tslrec/aao
                   [--max_users=400] [--max_history=10] [--pretrain_epochs=20] [--raw] [--device=cpu|cuda]

Outputs in ``--out`` (see :mod:`recbole_llm4msr.tslrec.pipeline`): ``pretrain.npz``, ``categories.json``,
``samples.jsonl``, ``model/`` (the fine-tuned LLM with a manifest), ``loss.png``, ``stores/`` (the item store) and
``tslrec.json`` (written last). A killed run resumes with the same command. Use the store with
``run_recbole --model=SASRec_TSLRec --dataset=... --knowledge_store=<store>`` (without it, run_recbole runs this
pipeline with the settings of properties/enhancement/tslrec.yaml).
"""
import argparse
import json
import logging
import sys

import yaml

from recbole_llm4msr.align.finetune import FinetuneError, add_lora_arguments, lora_from_args
from recbole_llm4msr.knowledge.llm import LLMNotFound
from recbole_llm4msr.knowledge.store import StoreError
from recbole_llm4msr.tslrec.pipeline import run
from recbole_llm4msr.tslrec.settings import TSLRecError, TSLRecSettings


def build_parser():
    p = argparse.ArgumentParser(prog="llm4msr-tslrec", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True)
    p.add_argument("--data_path", default="dataset/")
    p.add_argument("--config_files", default="", help="comma-separated YAML files (item_text_fields, RecBole settings)")
    p.add_argument("--backbone", default="SASRec", help="the sequential model pre-trained and clustered")
    p.add_argument("--k", type=int, default=32, help="latent categories")
    p.add_argument("--llm", default="smollm2", help="'smollm2' (embedded), a .gguf or a local model directory")
    p.add_argument("--out", default=None, help="output folder (default: in the cache, named by the settings)")
    p.add_argument("--raw", action="store_true", help="no pre-training or SFT: items embedded by the LLM as it is")
    p.add_argument("--max_users", type=int, default=400, help="SFT samples, one per user (0: every user)")
    p.add_argument("--max_history", type=int, default=10)
    p.add_argument("--pretrain_epochs", type=int, default=20)
    p.add_argument("--pooling", default="mean", choices=("mean", "last"))
    p.add_argument("--seed", type=int, default=2020)
    p.add_argument("--device", default="cpu")
    p.add_argument("--allow_id_text", action="store_true")
    p.add_argument("--item_text_words", type=int, default=None,
                   help="at most N words of each item's text (title first): fewer tokens per SFT prompt and item")
    p.add_argument("--extract_batch_size", type=int, default=32)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a RecBole setting for the pre-training (repeatable), e.g. MAX_ITEM_LIST_LENGTH=20; a key the "
                        "backbone's config does not know is an error")
    add_lora_arguments(p)
    return p


def settings_from_args(args):
    extra = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise TSLRecError(f"--set {item!r}: expected KEY=VALUE")
        extra[key.strip()] = yaml.safe_load(value)  # as llm4msr-compare --set reads values
    config_files = tuple(f for f in args.config_files.split(",") if f)
    if extra:  # RecBole would take a misspelt key silently and pre-train with its default
        from recbole_llm4msr.config import check_settings

        check_settings(args.backbone, args.dataset, extra, lambda key: "--set", {"data_path": args.data_path},
                       list(config_files) or None)
    lora = lora_from_args(args, args.seed)
    return TSLRecSettings(dataset=args.dataset, data_path=args.data_path, backbone=args.backbone, k=args.k,
                          llm=args.llm, out=args.out, sft=not args.raw, max_users=args.max_users or None,
                          max_history=args.max_history, pretrain_epochs=args.pretrain_epochs, pooling=args.pooling,
                          seed=args.seed, device=args.device, allow_id_text=args.allow_id_text,
                          item_text_words=args.item_text_words,
                          extract_batch_size=args.extract_batch_size,
                          config_files=config_files, pretrain_config=extra,
                          lora=lora)


def main(argv=None):
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        summary = run(settings_from_args(args))
    except (TSLRecError, FinetuneError, StoreError, LLMNotFound, FileNotFoundError, ValueError) as e:
        print(f"llm4msr-tslrec: error: {e}", file=sys.stderr)
        return 1
    print(json.dumps({k: summary.get(k) for k in ("store", "items", "pretrain", "categories", "sft", "seconds")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
