"""``llm4msr-knowledge``: build the knowledge store of a dataset (resumable, shardable).

    llm4msr-knowledge --dataset=ml-100k-msr --llm=smollm2 --mode=prompt [--batch_size=16] [--cache_dir=DIR]
                      [--limit_users=N] [--num-shards=N --shard-id=K] [--merge]

The last line printed is JSON: {"cache", "users", "scenarios", "dim", "seconds", "users_per_s", ...}.
"""
import argparse
import json
import logging
import os
import sys

from recbole_llm4msr.knowledge.extract import DEFAULTS, build_knowledge, merge_shards, shard_from_env


def build_parser():
    p = argparse.ArgumentParser(prog="llm4msr-knowledge", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True)
    p.add_argument("--data_path", default="dataset/", help="folder holding <dataset>/ (default dataset/)")
    p.add_argument("--llm", default=DEFAULTS["llm"], help="'smollm2' (embedded), a local .gguf or model directory")
    p.add_argument("--mode", default=DEFAULTS["mode"], choices=["prompt", "generate", "encoder"])
    p.add_argument("--batch_size", type=int, default=DEFAULTS["batch_size"])
    p.add_argument("--max_new_tokens", type=int, default=DEFAULTS["max_new_tokens"], help="generate mode")
    p.add_argument("--device", default=DEFAULTS["device"], help="cpu, cuda, cuda:1 ...")
    p.add_argument("--dtype", default=DEFAULTS["dtype"], help="auto (bf16 on GPU, fp32 on CPU), float32, bfloat16, float16")
    p.add_argument("--cache_dir", default=None, help="default $RECBOLE_LLM4MSR_CACHE/knowledge or ~/.cache/recbole_llm4msr/knowledge")
    p.add_argument("--template_dir", default=None, help="folder with your own scenario.txt / user.txt")
    p.add_argument("--max_items_per_scenario", type=int, default=DEFAULTS["max_items_per_scenario"])
    p.add_argument("--max_prompt_tokens", type=int, default=DEFAULTS["max_prompt_tokens"])
    p.add_argument("--limit_users", type=int, default=None, help="only the first N users (sorted by token)")
    p.add_argument("--chunk_size", type=int, default=DEFAULTS["chunk_size"], help="users per saved chunk")
    p.add_argument("--num-shards", "--num_shards", dest="num_shards", type=int, default=None,
                   help="split the users over N independent processes (default: from torchrun / SLURM, else 1)")
    p.add_argument("--shard-id", "--shard_id", dest="shard_id", type=int, default=None,
                   help="this process's shard, 0..N-1 (default: from torchrun / SLURM, else 0)")
    p.add_argument("--merge", action="store_true", help="only merge finished shards into the store")
    p.add_argument("--trust_remote_code", action="store_true", help="for models such as ChatGLM2-6B")
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


def main(argv=None):
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    config_files = [f for f in args.config_files.split(",") if f]
    resolve_shard(args)
    try:
        if args.merge:
            path = merge_shards(args.dataset, data_path=args.data_path, llm=args.llm, mode=args.mode,
                                cache_dir=args.cache_dir, template_dir=args.template_dir,
                                max_items_per_scenario=args.max_items_per_scenario,
                                max_prompt_tokens=args.max_prompt_tokens, limit_users=args.limit_users,
                                config_files=config_files, max_new_tokens=args.max_new_tokens)
            summary = {"cache": path, "merged": True}
        else:
            summary = build_knowledge(
                args.dataset, data_path=args.data_path, llm=args.llm, mode=args.mode, cache_dir=args.cache_dir,
                batch_size=args.batch_size, max_new_tokens=args.max_new_tokens, device=args.device, dtype=args.dtype,
                template_dir=args.template_dir, max_items_per_scenario=args.max_items_per_scenario,
                max_prompt_tokens=args.max_prompt_tokens, num_shards=args.num_shards, shard_id=args.shard_id,
                limit_users=args.limit_users, chunk_size=args.chunk_size, config_files=config_files,
                trust_remote_code=args.trust_remote_code)
    except (ValueError, FileNotFoundError, FileExistsError) as e:
        print(f"llm4msr-knowledge: error: {e}", file=sys.stderr)
        return 1
    if summary.get("users_per_s"):
        print(f"{summary.get('users_done')} users in {summary['seconds']} s (model load {summary['load_seconds']} s): "
              f"{summary['users_per_s']} users/s, {summary['tokens_per_s']} tokens/s", file=sys.stderr)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
