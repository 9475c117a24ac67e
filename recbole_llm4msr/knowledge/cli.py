"""``llm4msr-knowledge``: build the knowledge store of a dataset (resumable, shardable, fingerprinted).

    llm4msr-knowledge --dataset=ml-100k-msr --llm=smollm2 --mode=prompt [--batch_size=16] [--cache_dir=DIR]
                      [--limit_users=N] [--num-shards=N --shard-id=K] [--merge] [--config_files=a.yaml,b.yaml]

Dataset settings (field names, ``scenario_descriptions``, ``item_text_fields``) come from the same YAML files as
for ``run_recbole``: ``properties/dataset/<name>.yaml``, the converter's ``<name>.yaml``, then ``--config_files``.
The last line printed is JSON: {"cache", "users", "scenarios", "dim", "seconds", "unit" (user or item), "done",
"per_s", ...}.
"""
import argparse
import json
import logging
import os
import sys

from recbole_llm4msr.knowledge.extract import build_knowledge, check_store, merge_shards, report, shard_from_env
from recbole_llm4msr.knowledge.files import dataset_settings
from recbole_llm4msr.knowledge.spec import KnowledgeSpec, add_arguments


def build_parser():
    p = argparse.ArgumentParser(prog="llm4msr-knowledge", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True)
    p.add_argument("--data_path", default="dataset/", help="folder holding <dataset>/ (default dataset/)")
    add_arguments(p)
    p.add_argument("--num-shards", "--num_shards", dest="num_shards", type=int, default=None,
                   help="split the users over N independent processes (default: from torchrun / SLURM, else 1)")
    p.add_argument("--shard-id", "--shard_id", dest="shard_id", type=int, default=None,
                   help="this process's shard, 0..N-1 (default: from torchrun / SLURM, else 0)")
    p.add_argument("--merge", action="store_true", help="only merge finished shards into the store")
    p.add_argument("--report", action="store_true", help="after building (or for --store), write the knowledge "
                                                           "report (geometry, neighbour and attribute probes against "
                                                           "random and no-LLM baselines) as report.json + report.png "
                                                           "in the store folder")
    p.add_argument("--report_k", type=int, default=20, help="neighbours of the neighbour probe")
    p.add_argument("--config_files", default="", help="comma-separated YAML files (scenario_descriptions, ...)")
    return p


def resolve_shard(args, environ=None):
    """Fill ``--num-shards`` / ``--shard-id`` from the launcher (torchrun, SLURM) when not given; on a launcher
    with GPUs, ``--device=cuda`` becomes this process's GPU (``LOCAL_RANK`` / ``SLURM_LOCALID``)."""
    env = os.environ if environ is None else environ
    found = shard_from_env(env)
    if args.num_shards is None and args.shard_id is None and found:
        args.shard_id, args.num_shards, launcher = found
        logging.getLogger(__name__).info(f"shard {args.shard_id} of {args.num_shards} (from {launcher})")
    args.num_shards = 1 if args.num_shards is None else args.num_shards
    args.shard_id = 0 if args.shard_id is None else args.shard_id
    if not 0 <= args.shard_id < args.num_shards:
        raise SystemExit(f"llm4msr-knowledge: error: --shard-id={args.shard_id} must be in 0..{args.num_shards - 1}")
    local = env.get("LOCAL_RANK", env.get("SLURM_LOCALID"))
    if args.device == "cuda" and local is not None:
        args.device = f"cuda:{int(local)}"
    return args


def spec_from_args(args):
    """The dataset (converted first if built in) and its merged settings -> :class:`KnowledgeSpec`."""
    settings = dataset_settings(args.dataset, args.data_path, [f for f in args.config_files.split(",") if f])
    return KnowledgeSpec.from_args(args, settings)


def main(argv=None):
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    resolve_shard(args)
    try:
        spec = spec_from_args(args)
        if spec.store:
            store = check_store(spec.store, spec)
            summary = {"cache": store.path, "checked": True, "dim": store.dim}
        elif args.merge:
            summary = {"cache": merge_shards(spec), "merged": True}
        else:
            summary = build_knowledge(spec, num_shards=args.num_shards, shard_id=args.shard_id)
        if args.report and summary.get("merged") is not False:  # a shard that did not merge has no store yet
            summary["report"] = report(spec, summary["cache"], k=args.report_k)
    except (ValueError, FileNotFoundError, FileExistsError) as e:
        print(f"llm4msr-knowledge: error: {e}", file=sys.stderr)
        return 1
    if summary.get("per_s"):  # the unit of work: users (user_vector: prompt) or items (user_vector: items)
        unit = summary.get("unit", "user")
        print(f"{summary.get('done')} {unit}s in {summary['seconds']} s (model load {summary['load_seconds']} s): "
              f"{summary['per_s']} {unit}s/s, {summary['tokens_per_s']} tokens/s", file=sys.stderr)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
