"""Knowledge-extraction speed: the full embedded default, and ours vs an official-style loop on the same prompts.

1. All users of the dataset with the embedded SmolLM2 in ``prompt`` mode, from an empty cache, model load included;
   then the rerun (the cache is reused).
2. On the first ``--compare_users`` users, same model and prompts, in one process:
   * official-style prompt mode: one prompt at a time, full causal-LM forward with ``output_hidden_states=True``;
   * ours, prompt mode: shared-prefix KV cache, length-sorted batches, base model only (no LM head);
   * official-style generate mode: one prompt at a time, ``generate(output_hidden_states=True)`` keeping every
     step's hidden states (the official code's approach), ``--max_new_tokens`` tokens;
   * ours, generate mode: batched greedy generation, then one forward over prompt + answer.
Writes ``knowledge-<dataset>.json`` and ``.md`` into ``--out``.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from recbole_llm4msr.atomic import atomic_write_json, atomic_write_text  # noqa: E402


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def full_run(args, cache):
    cli = os.path.join(os.path.dirname(sys.executable), "llm4msr-knowledge")
    cmd = [cli, f"--dataset={args.dataset}", f"--data_path={args.data_path}", f"--cache_dir={cache}", "--llm=smollm2",
           "--mode=prompt", "--user_vector=prompt",
           f"--batch_size={args.batch_size}"]
    out = {}
    for label in ("first", "rerun"):
        t = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr[-3000:])
        summary = json.loads(proc.stdout.strip().splitlines()[-1])
        summary["wall_seconds"] = round(time.perf_counter() - t, 1)
        out[label] = summary
        print(label, summary, flush=True)
    return out


def compare(args):
    import torch

    from recbole_llm4msr.knowledge.files import DatasetFiles, dataset_settings
    from recbole_llm4msr.knowledge.llm import KnowledgeLLM
    from recbole_llm4msr.knowledge.prompts import PromptBuilder
    from recbole_llm4msr.knowledge.spec import KnowledgeSpec

    llm = KnowledgeLLM.load("smollm2", max_new_tokens=args.max_new_tokens)  # our defaults (dtype auto)
    # the official code runs the model as transformers loads it: float32 on CPU
    official = KnowledgeLLM.load("smollm2", dtype="float32", max_new_tokens=args.max_new_tokens)
    spec = KnowledgeSpec(dataset=args.dataset, data_path=args.data_path,
                         settings=dataset_settings(args.dataset, args.data_path))
    builder = PromptBuilder(DatasetFiles.from_spec(spec), count_tokens=llm.count_tokens)
    users = sorted(builder.users(), key=str)[: args.compare_users]
    prompts = [builder.user_prompts(users)[u] for u in users]
    ids = [llm.token_ids(p) for p in prompts]
    n_tokens = sum(len(x) for x in ids)
    res = {"users": len(users), "mean_prompt_tokens": round(n_tokens / len(users), 1)}

    def timed(fn):
        t = time.perf_counter()
        fn()
        return time.perf_counter() - t

    def official_prompt(model):
        with torch.inference_mode():
            for x in ids:
                model(torch.tensor([x]), output_hidden_states=True).hidden_states[-1][0, -1]

    def official_generate(model):
        with torch.inference_mode():
            for x in ids:
                out = model.generate(torch.tensor([x]), attention_mask=torch.ones(1, len(x), dtype=torch.long),
                                         max_new_tokens=args.max_new_tokens, do_sample=False,
                                         output_hidden_states=True, return_dict_in_generate=True,
                                         pad_token_id=llm.tokenizer.pad_token_id)
                out.hidden_states[-1][-1][0, -1]

    res["dtype"] = {"ours": llm.dtype, "official": official.dtype}
    rows = [
        ("prompt", f"official-style, {official.dtype} (one at a time, full forward)",
         lambda: official_prompt(official.model)),
        ("prompt", f"official-style, {llm.dtype} (one at a time, full forward)", lambda: official_prompt(llm.model)),
        ("prompt", f"ours, {llm.dtype} (shared-prefix KV cache, batched, no LM head)",
         lambda: llm.encode(prompts, "prompt", args.batch_size)),
        ("generate", f"official-style, {official.dtype} (one at a time, generate({args.max_new_tokens}) keeping "
                     f"hidden states)", lambda: official_generate(official.model)),
        ("generate", f"ours, {llm.dtype} (batched generate + one forward)",
         lambda: llm.encode(prompts, "generate", args.gen_batch_size)),
    ]
    res["runs"] = []
    for mode, label, fn in rows:
        seconds = timed(fn)
        res["runs"].append({"mode": mode, "method": label, "seconds": round(seconds, 2),
                            "users_per_s": round(len(users) / seconds, 3)})
        print(res["runs"][-1], flush=True)
    for mode in ("prompt", "generate"):
        runs = [r for r in res["runs"] if r["mode"] == mode]
        res[f"speedup_{mode}"] = round(runs[-1]["users_per_s"] / runs[0]["users_per_s"], 2)
    res["speedup_prompt_same_dtype"] = round(res["runs"][2]["users_per_s"] / res["runs"][1]["users_per_s"], 2)
    res["peak_rss_mb"] = round(peak_rss_mb())
    return res


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="ml-100k-msr")
    p.add_argument("--data_path", default=os.path.join(ROOT, "dataset"))
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--gen_batch_size", type=int, default=16)
    p.add_argument("--max_new_tokens", type=int, default=32)
    p.add_argument("--compare_users", type=int, default=48)
    p.add_argument("--skip_full", action="store_true")
    p.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results"))
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    result = {"dataset": args.dataset, "cores": os.cpu_count(), "torch_threads": None}
    import torch

    result["torch_threads"] = torch.get_num_threads()
    base = os.path.join(args.out, f"knowledge-{args.dataset}")
    if not args.skip_full:
        with tempfile.TemporaryDirectory() as cache:
            result["full"] = full_run(args, cache)
    elif os.path.isfile(base + ".json"):
        result["full"] = json.load(open(base + ".json")).get("full")  # keep the last full-run numbers
    result["compare"] = compare(args)
    atomic_write_json(base + ".json", result, indent=2)
    lines = [f"Knowledge extraction on {args.dataset}, SmolLM2-135M-Instruct (GGUF Q4_1, de-quantised to fp32), "
             f"{result['cores']} CPU cores."]
    if result.get("full"):
        first, rerun = result["full"]["first"], result["full"]["rerun"]
        lines += ["", f"- all {first['users']} users, prompt mode, empty cache: **{first['wall_seconds']} s** wall "
                  f"(model load {first['load_seconds']} s; {first['users_per_s']} users/s, {first['tokens_per_s']} "
                  f"tokens/s); rerun reusing the cache: {rerun['wall_seconds']} s"]
    c = result["compare"]
    lines += ["", f"Same model and prompts, first {c['users']} users (mean {c['mean_prompt_tokens']} prompt tokens):", "",
              "| mode | method | seconds | users/s |", "|---|---|---|---|"]
    lines += [f"| {r['mode']} | {r['method']} | {r['seconds']} | {r['users_per_s']} |" for r in c["runs"]]
    lines += ["", f"Speed-up over the official-style loop: prompt mode {c['speedup_prompt']}x "
              f"({c['speedup_prompt_same_dtype']}x at the same dtype), generate mode {c['speedup_generate']}x; "
              f"peak RSS of the comparison process (both models loaded) {c['peak_rss_mb']} MB."]
    atomic_write_text(base + ".md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
