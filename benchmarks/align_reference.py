"""Add the words-alone reference ranker (``popularity_words``) to a finished ``llm4msr-align`` run's evaluation
without ranking with an LLM again (seconds instead of the two LLM rankings' ~50 minutes on 2 CPU cores).

    python benchmarks/align_reference.py --out DIR [--dataset amazon-art-office] [--eval_users 500] [--result FILE]

The validation cases are rebuilt from the model manifest's sample settings (seed, max_history, candidate_popularity)
and checked against the run: the popularity ranker's per-case ranks must equal those in ``DIR/eval.json`` (else the
cases differ and nothing is written). Writes ``FILE`` (default ``DIR/eval-reference.json``): the run's evaluation with
``popularity_words`` and the paired ``differences`` recomputed.
"""
import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from recbole_llm4msr.align.cli import build_parser, dataset_files, sample_builder  # noqa: E402
from recbole_llm4msr.align.evaluate import (  # noqa: E402
    differences,
    popularity_ranker,
    popularity_words_ranker,
    ranking_cases,
)
from recbole_llm4msr.atomic import atomic_write_json  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--dataset", default="amazon-art-office")
    p.add_argument("--data_path", default=os.path.join(ROOT, "dataset"))
    p.add_argument("--eval_users", type=int, default=500)
    p.add_argument("--negatives", type=int, default=19)
    p.add_argument("--result", default=None)
    args = p.parse_args(argv)
    manifest = json.load(open(os.path.join(args.out, "model", "manifest.json")))
    evaluation = json.load(open(os.path.join(args.out, "eval.json")))
    ss = manifest["sample_settings"]
    align_args = build_parser().parse_args([
        f"--dataset={args.dataset}", f"--data_path={args.data_path}", f"--out={args.out}", f"--seed={ss['seed']}",
        f"--max_history={ss['max_history']}", f"--candidate_popularity={ss.get('candidate_popularity', 'none')}"])
    files = dataset_files(align_args)
    builder = sample_builder(align_args, files)
    cases = ranking_cases(builder, files, args.eval_users, args.negatives, ss["seed"])
    if popularity_ranker(builder, cases)["ranks"] != evaluation["popularity"]["ranks"]:
        sys.exit(f"the rebuilt cases are not the run's ({args.out}/eval.json): check --eval_users / --negatives / "
                 f"--dataset")
    evaluation["popularity_words"] = popularity_words_ranker(builder, cases)
    evaluation["differences"] = differences(evaluation)
    path = args.result or os.path.join(args.out, "eval-reference.json")
    atomic_write_json(path, evaluation, indent=2)
    print(json.dumps({k: {m: evaluation[k][m] for m in ("HR@1", "HR@5", "NDCG@5")}
                      for k in ("aligned", "base", "popularity", "popularity_words") if k in evaluation}))
    print(json.dumps(evaluation["differences"].get("aligned - popularity_words")))


if __name__ == "__main__":
    main()
