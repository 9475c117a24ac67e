"""Alignment cost and quality on one dataset (targets, amazon-art-office with the embedded SmolLM2 on 2 CPU cores:
the alignment within 20 minutes wall, the aligned model's HR@1 among 20 candidates above the base model's and
popularity's).

    python benchmarks/align.py --dataset amazon-art-office --max_samples 480 [--eval_users 200] [--name FILE]

Runs ``llm4msr-align`` (resumable: rerun after a stop) into the cache and writes its manifest and evaluation to
``benchmarks/results/align-<dataset>.json`` and ``.md``.
"""
import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from recbole_llm4msr.align.cli import build_parser, run  # noqa: E402
from recbole_llm4msr.align.evaluate import METRICS  # noqa: E402
from recbole_llm4msr.atomic import atomic_write_json, atomic_write_text  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="amazon-art-office")
    p.add_argument("--data_path", default=os.path.join(ROOT, "dataset"))
    p.add_argument("--max_samples", type=int, default=480)
    p.add_argument("--eval_users", type=int, default=200)
    p.add_argument("--tasks", default="mim,bpr,mlm,next,rank,click")
    p.add_argument("--out", default=os.path.join(os.path.expanduser("~"), ".cache", "recbole_llm4msr", "aligned"))
    p.add_argument("--results", default=os.path.join(ROOT, "benchmarks", "results"))
    p.add_argument("--name", default=None, help="result file name without extension (default align-<dataset>)")
    args = p.parse_args(argv)
    out = os.path.join(args.out, f"{args.dataset}-{args.max_samples}")
    cli = build_parser().parse_args([f"--dataset={args.dataset}", f"--data_path={args.data_path}", "--llm=smollm2",
                                     f"--out={out}", f"--max_samples={args.max_samples}",
                                     f"--eval_users={args.eval_users}", f"--tasks={args.tasks}"])
    t = time.perf_counter()
    manifest = run(cli)
    ev = manifest["evaluation"] or {}
    result = {"dataset": args.dataset, "cpus": os.cpu_count(), "threads": os.environ.get("OMP_NUM_THREADS", "all"),
              "model_dir": os.path.join(out, "model"), "wall_s_this_call": round(time.perf_counter() - t, 1),
              **{k: manifest[k] for k in ("samples", "sample_counts", "steps", "first_loss", "last_loss",
                                          "mean_loss_first_10pct", "mean_loss_last_10pct", "train_seconds",
                                          "seconds")},
              "evaluation": ev}
    os.makedirs(args.results, exist_ok=True)
    stem = args.name or f"align-{args.dataset}"
    atomic_write_json(os.path.join(args.results, f"{stem}.json"), result, indent=2)
    rows = [(name, ev[name]) for name in ("aligned", "base", "popularity") if name in ev]
    hr = {name: m["HR@1"] for name, m in rows}
    met_time = manifest["train_seconds"] <= 1200  # the alignment (LoRA fine-tuning); evaluation is extra
    met_hr = bool(hr) and hr.get("aligned", 0) > max(hr.get("base", 0), hr.get("popularity", 0))
    lines = [f"# llm4msr-align on {args.dataset} (embedded SmolLM2-135M-Instruct, {os.cpu_count()} CPU cores)", "",
             f"{manifest['samples']} samples {manifest['sample_counts']}, LoRA r=8, 1 epoch = {manifest['steps']} "
             f"steps of 8; loss {manifest['mean_loss_first_10pct']} (first 10% of steps) -> "
             f"{manifest['mean_loss_last_10pct']} (last 10%). Fine-tuning {manifest['train_seconds']} s; the whole "
             f"command (samples, base-model ranking, fine-tuning, aligned ranking, saving) {manifest['seconds']} s.", "",
             f"Ranking among {ev.get('candidates', 20)} candidates on the validation split "
             f"({ev.get('aligned', {}).get('cases', '?')} users; {ev.get('scoring', '')}):", "",
             "| ranker | HR@1 | HR@5 | NDCG@5 |", "|---|---|---|---|"]
    lines += [f"| {name} | {m['HR@1']:.3f} | {m['HR@5']:.3f} | {m['NDCG@5']:.3f} |" for name, m in rows]
    for pair, d in (ev.get("differences") or {}).items():
        lines += [f"- {pair}: " + "; ".join(f"{m} {d[m]['difference']:+.3f} [{d[m]['low']:+.3f}, {d[m]['high']:+.3f}] "
                                             f"(p {d[m]['p']:.3f})" for m in METRICS)]
    if ev.get("differences"):
        lines += ["", "(paired bootstrap over the ranked users, 1,000 resamples: 95% interval and two-sided p)"]
    lines += ["", f"Targets: the alignment (fine-tuning) within 1200 s: {'met' if met_time else 'NOT met'} "
                  f"({manifest['train_seconds']} s; with both rankings the command took {manifest['seconds']} s); "
                  f"aligned HR@1 above base and popularity: {'met' if met_hr else 'NOT met'} ({hr})."]
    atomic_write_text(os.path.join(args.results, f"{stem}.md"), "\n".join(lines) + "\n")
    print("\n".join(lines))
    print(json.dumps(result["evaluation"]))


if __name__ == "__main__":
    main()
