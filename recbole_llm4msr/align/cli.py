"""``llm4msr-align``: fine-tune an LLM on recommendation samples (LoRA), evaluate it as a ranker, save it as a local
model directory that ``llm4msr-knowledge --llm=DIR`` and ``run_recbole ... --llm=DIR`` take like any other.

    llm4msr-align --dataset=amazon-art-office --llm=smollm2 --out=aligned/aao
                  [--tasks=mim,bpr,mlm,next,rank,click,listwise] [--max_samples=2000] [--epochs=1] [--lora_r=8]
                  [--device=cpu|cuda] [--eval_users=200]

Outputs in ``--out``: ``model/`` (merged weights as safetensors, tokenizer, ``manifest.json``: data fingerprint,
tasks, sample counts, losses, seconds, settings), ``eval.json`` (HR@1 / HR@5 / NDCG@5 among 1 + 19 candidates on the
validation split for the aligned model, the base model and popularity, each with its per-case ranks, and
``differences``: aligned - base and aligned - popularity with paired bootstrap 95% intervals), ``loss.png``,
``samples.jsonl``. A killed run resumes with the same command; ``model/`` appears only when finished. ``model/adapter/``
holds the LoRA adapter alone (a few MB): a model directory copied to another machine without its weights
(``manifest.json``, the tokenizer and ``adapter/``) gets them back from the base model by the same command.

``--max_train_seconds=S`` gives the fine-tuning loop a time budget instead of a sample count to guess: past S seconds
(the ranking before and after is not counted) the model is finished with the steps done, a random subset of the
``--max_samples`` samples (the manifest's ``steps`` of ``planned_steps``, ``trained_samples``, ``stopped``). Such a
stop is final for that ``--out`` (the same command finishes from its checkpoint; delete ``--out`` to train longer).

``--candidate_popularity=words`` writes every candidate (in the samples and in the ranker) with how often other
customers bought it in the scenario, in words (:mod:`recbole_llm4msr.align.samples`); the evaluation then also holds
``popularity_words``, the ranker of those words alone.

``--evaluate_only`` ranks again with a finished ``--out``'s model and the base model ``--llm`` (other ``--eval_users``,
``--negatives``, ``--scoring``, ``--max_history``, ``--seed``) and writes ``eval-<scoring>-<cases>cases.json`` beside
``eval.json``, which keeps the training run's own evaluation.

``--probe_knowledge=items|prompt`` (off by default: two knowledge extractions, ~11 min each for amazon-art-office's
31,755 item texts with SmolLM2 on 2 CPU cores) also extracts knowledge (``knowledge_user_vector``) with the aligned
and with the base model into the knowledge cache (``--knowledge_cache``; the stores runs with ``--llm=DIR`` find) and
writes ``knowledge-<user_vector>.json``: each store's knowledge report (neighbour probe against random vectors and
the no-LLM profile) and the two on the same validation rows, aligned - base with its paired bootstrap interval, for
each ``knowledge_norm`` (:func:`recbole_llm4msr.knowledge.report.probe_versus`). With ``--evaluate_only`` and
``--eval_users=0`` only the probe runs; the training command on a finished model runs the probe only (a run killed
while probing resumes, its stores too).

Several GPUs or machines: the same command under ``torchrun --nproc_per_node=N [--nnodes ...]`` (or ``accelerate
launch``) trains with DistributedDataParallel (each global batch split over the ranks, ``--device=cuda`` puts rank k
on ``cuda:LOCAL_RANK``); rank 0 evaluates and writes everything.
"""
import argparse
import json
from dataclasses import asdict
import logging
import os
import sys
import time

from recbole_llm4msr.align.evaluate import (
    SCORINGS,
    differences,
    llm_ranker,
    popularity_ranker,
    popularity_words_ranker,
    ranking_cases,
)
from recbole_llm4msr.align.finetune import (
    LISTWISE_FORWARDS,
    FinetuneError,
    add_lora_arguments,
    distributed_context,
    finetune,
    has_weights,
    is_finished,
    load_for_training,
    lora_from_args,
    loss_plot,
    rank_device,
    rebuild_weights,
    save_model,
)
from recbole_llm4msr.align.samples import CANDIDATE_POPULARITY, DEFAULT_TASKS, TASKS, SampleBuilder, SampleError
from recbole_llm4msr.atomic import atomic_write, atomic_write_json
from recbole_llm4msr.knowledge.files import DatasetFiles, dataset_settings
from recbole_llm4msr.knowledge.fingerprint import file_digest, text_digest
from recbole_llm4msr.knowledge.llm import LLMNotFound, file_identity
from recbole_llm4msr.knowledge.spec import USER_VECTORS, KnowledgeSpec

logger = logging.getLogger("llm4msr-align")


def build_parser():
    p = argparse.ArgumentParser(prog="llm4msr-align", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True)
    p.add_argument("--data_path", default="dataset/")
    p.add_argument("--config_files", default="", help="comma-separated YAML files (item_text_fields, ...)")
    p.add_argument("--llm", default="smollm2", help="'smollm2' (embedded GGUF, de-quantised once), a .gguf or a "
                                                    "local model directory")
    p.add_argument("--out", required=True)
    p.add_argument("--tasks", default=",".join(DEFAULT_TASKS),
                   help=f"comma-separated, from {', '.join(TASKS)} (default: all but listwise, the paper's kinds)")
    p.add_argument("--listwise_negatives", type=int, default=4,
                   help="listwise task: negatives scored against each answer (the user's own training negatives)")
    p.add_argument("--listwise_temperature", type=float, default=1.0,
                   help="listwise task: the candidates' scores are divided by this before the softmax")
    p.add_argument("--candidate_popularity", default="none", choices=CANDIDATE_POPULARITY,
                   help="words: every candidate item (answers, options, listwise negatives, the ranker's candidates) "
                        "is written with how often other customers bought it in the scenario ('(a bestseller)'), "
                        "from the training split; none: titles only (the default)")
    p.add_argument("--max_samples", type=int, default=2000)
    p.add_argument("--max_history", type=int, default=10, help="items of a history written into a sample")
    p.add_argument("--allow_id_text", action="store_true", help="items without text are written as 'item <id>'")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="auto", help="auto: bfloat16 on a GPU, float32 on the CPU (for training)")
    p.add_argument("--trust_remote_code", action="store_true")
    p.add_argument("--eval_users", type=int, default=200, help="validation users ranked (0: no evaluation)")
    p.add_argument("--negatives", type=int, default=19)
    p.add_argument("--scoring", default="mean", choices=SCORINGS,
                   help="the ranker's candidate score: mean (answer log-likelihood per token) | sum (in all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--evaluate_only", action="store_true",
                   help="no training: rank with the finished model in --out and the base model --llm")
    p.add_argument("--probe_knowledge", default="none", choices=("none",) + USER_VECTORS,
                   help="also extract knowledge (this knowledge_user_vector) with the aligned and the base model and "
                        "compare their neighbour probes (knowledge-<user_vector>.json); none: not done")
    p.add_argument("--knowledge_cache", default=None, help="where the probe's stores go (default: the knowledge "
                                                           "cache, where runs with --llm=DIR find them)")
    p.add_argument("--listwise_forward", default="auto", choices=LISTWISE_FORWARDS,
                   help="listwise samples in training: shared_prefix (each prompt once, its candidates on its KV cache, "
                        "sample by sample: least compute and memory) | batched (the whole batch in one pass: fewest "
                        "kernel launches) | auto: batched on a GPU or under torchrun, shared_prefix otherwise (and "
                        "from a batched step that runs out of memory on)")
    p.add_argument("--max_train_seconds", type=float, default=0,
                   help="a time budget for the fine-tuning loop: past it the model is finished with the steps done "
                        "(a random subset of the samples; the manifest says how many); 0: no budget")
    add_lora_arguments(p)
    return p


def dataset_files(args):
    settings = dataset_settings(args.dataset, args.data_path, [f for f in args.config_files.split(",") if f])
    return DatasetFiles.from_spec(KnowledgeSpec(dataset=args.dataset, data_path=args.data_path, settings=settings))


def sample_builder(args, files):
    return SampleBuilder(files, seed=args.seed, max_history=args.max_history, allow_id_text=args.allow_id_text,
                         logger=logger, listwise_negatives=args.listwise_negatives,
                         candidate_popularity=args.candidate_popularity)


def reference_rankers(args, builder, cases):
    """With ``--candidate_popularity=words``: the ranker of the words alone (``popularity_words``), beside popularity's
    exact counts."""
    return {"popularity_words": popularity_words_ranker(builder, cases)} if args.candidate_popularity == "words" else {}


def describe(evaluation, args, **extra):
    """``evaluation`` with what it ranked and how, and the paired differences of its rankers."""
    evaluation.update(candidates=1 + args.negatives, split="valid", candidate_popularity=args.candidate_popularity,
                      scoring=f"{args.scoring} answer-token log-likelihood", **extra,
                      differences=differences(evaluation))
    return evaluation


def run(args):
    if args.evaluate_only:
        return evaluate_only(args)
    start = time.perf_counter()
    os.makedirs(args.out, exist_ok=True)
    model_dir = os.path.join(args.out, "model")
    if is_finished(model_dir):
        if not has_weights(model_dir):  # copied from another machine without its weights: rebuilt from adapter/
            rebuild_weights(model_dir, rank_device(args.device), args.trust_remote_code)
        with open(os.path.join(model_dir, "manifest.json")) as f:
            manifest = json.load(f)
        if args.probe_knowledge == "none":
            logger.warning(f"{model_dir} is finished (manifest.json): nothing to do")
            return manifest
        # a run killed while probing (or a probe asked for later): the model is kept, the stores resume
        logger.warning(f"{model_dir} is finished (manifest.json): only the knowledge probe runs")
        return dict(manifest, knowledge_file=knowledge_probe(args, dataset_files(args), model_dir))
    files = dataset_files(args)
    builder = sample_builder(args, files)
    tasks = [t for t in args.tasks.split(",") if t.strip()]
    samples = builder.build(tasks, args.max_samples)
    settings = lora_from_args(args, args.seed)
    if len(samples) < settings.batch_size:
        raise FinetuneError(f"{len(samples)} sample(s) is below one batch ({settings.batch_size}); raise --max_samples "
                            f"or lower --batch_size")
    atomic_write(os.path.join(args.out, "samples.jsonl"),
                 lambda f: f.writelines(json.dumps(s.__dict__, ensure_ascii=False) + "\n" for s in samples))
    device = rank_device(args.device)
    rank, world, _ = distributed_context(device)
    name, tokenizer, model = load_for_training(args.llm, device, args.dtype, args.trust_remote_code)
    dtype = str(next(model.parameters()).dtype).replace("torch.", "")
    evaluation = {}
    base_eval = os.path.join(args.out, ".base-eval.json")
    cases = ranking_cases(builder, files, args.eval_users, args.negatives, args.seed) \
        if args.eval_users and rank == 0 else []
    if cases:
        # the base ranking is kept for a resumed run while what it ranked and how are the same
        ranked = {"scoring": args.scoring, "candidate_popularity": args.candidate_popularity, "prompts": text_digest(
            [[builder.next_prompt(s, h)] + [str(c) for c in cands] for _, s, h, cands in cases])}
        kept = {}
        if os.path.isfile(base_eval):
            with open(base_eval) as f:
                kept = json.load(f)
        # before training: merging LoRA changes the base weights in place (a kept ranking without per-case ranks,
        # from before they were kept, is redone)
        if kept.get("ranked") != ranked or "ranks" not in kept["evaluation"]["base"]:
            kept = {"ranked": ranked, "evaluation": {
                "base": llm_ranker(model, tokenizer, builder, cases, settings.max_length, desc="ranking (base model)",
                                   scoring=args.scoring),
                "popularity": popularity_ranker(builder, cases)}}
            atomic_write_json(base_eval, kept)
        evaluation = dict(kept["evaluation"], **reference_rankers(args, builder, cases))
    merged, history = finetune(model, tokenizer, [(s.prompt, s.answer, s.negatives) for s in samples], args.out,
                               settings, scoring=args.scoring, temperature=args.listwise_temperature,
                               max_seconds=args.max_train_seconds or None, listwise_forward=args.listwise_forward)
    if rank != 0:  # rank 0 evaluates and writes the model
        return {"rank": rank, "world_size": world, "steps": history["steps"]}
    if cases:
        evaluation["aligned"] = llm_ranker(merged, tokenizer, builder, cases, settings.max_length,
                                           desc="ranking (aligned model)", scoring=args.scoring)
        describe(evaluation, args)
    counts = {t: sum(s.task == t for s in samples) for t in tasks}
    manifest = {
        "base_llm": str(args.llm), "base_model": name, "base_identity": file_identity(args.llm),
        "dataset": args.dataset, "data_fingerprint": {"train_split": file_digest(files.train_file),
                                                      "item_texts": text_digest(sorted(files.item_texts().items()))},
        "tasks": tasks, "sample_counts": counts, "samples": len(samples), "settings": asdict(settings),
        "sample_settings": {"max_history": args.max_history, "allow_id_text": args.allow_id_text, "seed": args.seed,
                            "candidate_popularity": args.candidate_popularity,
                            **({"listwise_negatives": args.listwise_negatives,
                                "listwise_temperature": args.listwise_temperature, "listwise_scoring": args.scoring,
                                "listwise_forward": history["listwise_forward"]}
                               if "listwise" in tasks else {})},
        "steps": history["steps"], "planned_steps": history["planned_steps"],
        "trained_samples": trained_samples(history["steps"], history["steps_per_epoch"], settings.batch_size,
                                           len(samples)),
        "stopped": history["stopped"], "max_train_seconds": args.max_train_seconds or None,
        "first_loss": history["losses"][0], "last_loss": history["losses"][-1],
        "mean_loss_first_10pct": _mean(history["losses"][: max(1, len(history["losses"]) // 10)]),
        "mean_loss_last_10pct": _mean(history["losses"][-max(1, len(history["losses"]) // 10):]),
        "losses": history["losses"],  # per step (loss.png draws them)
        "train_seconds": round(history["seconds"], 1), "seconds": round(time.perf_counter() - start, 1),
        "device": args.device, "dtype": dtype, "world_size": world, "evaluation": evaluation or None,
    }
    loss_plot(history["losses"], os.path.join(args.out, "loss.png"),
              f"{args.dataset}: LoRA r={settings.lora_r} on {name}, {len(samples)} samples"
              + (f" ({manifest['trained_samples']} trained: {history['stopped']})" if history["stopped"] else ""),
              ylabel="listwise loss (CE over candidates)" if "listwise" in tasks else "answer-token loss")
    if evaluation:
        atomic_write_json(os.path.join(args.out, "eval.json"), evaluation, indent=2)
    save_model(merged, tokenizer, args.out, manifest)
    if os.path.isfile(base_eval):
        os.remove(base_eval)
    if args.probe_knowledge != "none":
        del merged, model  # the extraction loads each model itself
        manifest = dict(manifest, knowledge_file=knowledge_probe(args, files, model_dir))
    return manifest


def knowledge_probe(args, files, model_dir):
    """Knowledge (``args.probe_knowledge``: the user vector) from the aligned model in ``model_dir`` and from the base
    model ``args.llm``, built or reused in the knowledge cache; their reports and their paired comparison written to
    ``knowledge-<user_vector>.json`` in ``args.out``. -> that path."""
    from recbole_llm4msr.knowledge.extract import build_knowledge
    from recbole_llm4msr.knowledge.report import knowledge_report, probe_versus
    from recbole_llm4msr.knowledge.store import KnowledgeStore

    out = {"user_vector": args.probe_knowledge}
    stores = {}
    for key, llm in (("aligned", model_dir), ("base", args.llm)):
        spec = KnowledgeSpec(dataset=args.dataset, data_path=args.data_path, settings=files.config, llm=str(llm),
                             user_vector=args.probe_knowledge, device=rank_device(args.device),
                             trust_remote_code=args.trust_remote_code, cache_dir=args.knowledge_cache)
        logger.info(f"knowledge probe: extracting {args.probe_knowledge} knowledge with the {key} model ({llm})")
        stores[key] = store = KnowledgeStore(build_knowledge(spec)["cache"])
        rep = knowledge_report(store, files, out_dir=store.path)
        out[key] = {"store": store.path, "neighbour_probe_auc": rep["neighbour_probe_auc"],
                    "vs_profile": rep["neighbour_probe_vs_profile"]}
    versus = probe_versus(stores["aligned"], stores["base"], files)
    out.update(users=versus["users"], rows=versus["rows"], k=versus["k"],
               aligned_minus_base={norm: {"aligned": r["a"], "base": r["b"], "difference": r["a_minus_b"]}
                                   for norm, r in versus["by_norm"].items()})
    path = os.path.join(args.out, f"knowledge-{args.probe_knowledge}.json")
    atomic_write_json(path, out, indent=2)
    raw = out["aligned_minus_base"]["none"]["difference"]
    if raw:
        logger.info(f"knowledge probe: aligned - base {raw['difference']:+.4f} {raw['ci95']} (raw vectors); {path}")
    return path


def evaluate_only(args):
    """Rank the validation cases with the finished model in ``args.out`` and the base model ``args.llm`` (one model
    in memory at a time) and popularity; write ``eval-<scoring>-<cases>cases.json`` into ``args.out``."""
    start = time.perf_counter()
    model_dir = os.path.join(args.out, "model")
    if not is_finished(model_dir):
        raise FileNotFoundError(f"--evaluate_only needs a finished aligned model in {model_dir} (with manifest.json); "
                                f"run llm4msr-align without --evaluate_only first")
    if args.eval_users <= 0 and args.probe_knowledge == "none":
        raise ValueError(f"--evaluate_only needs --eval_users > 0 or --probe_knowledge, not --eval_users="
                         f"{args.eval_users} alone")
    files = dataset_files(args)
    if args.eval_users <= 0:
        return {"knowledge_file": knowledge_probe(args, files, model_dir)}
    builder = sample_builder(args, files)
    cases = ranking_cases(builder, files, args.eval_users, args.negatives, args.seed)
    if not cases:
        raise ValueError(f"no validation case to rank in dataset '{args.dataset}' (users with a validation positive, "
                         f"a training history in its scenario and {args.negatives} negatives)")
    device = rank_device(args.device)
    settings = lora_from_args(args, args.seed)
    evaluation = {"popularity": popularity_ranker(builder, cases), **reference_rankers(args, builder, cases)}
    for key, llm in (("base", args.llm), ("aligned", model_dir)):
        _, tokenizer, model = load_for_training(llm, device, args.dtype, args.trust_remote_code)
        evaluation[key] = llm_ranker(model, tokenizer, builder, cases, settings.max_length,
                                     desc=f"ranking ({key} model)", scoring=args.scoring)
        del model
    describe(evaluation, args, max_history=args.max_history, seed=args.seed,
             seconds=round(time.perf_counter() - start, 1))
    path = os.path.join(args.out, f"eval-{args.scoring}-{len(cases)}cases"
                              f"{'' if args.candidate_popularity == 'none' else '-popularity'}.json")
    atomic_write_json(path, evaluation, indent=2)
    logger.info(f"wrote {path}")
    result = {"evaluation": evaluation, "eval_file": path}
    if args.probe_knowledge != "none":
        result["knowledge_file"] = knowledge_probe(args, files, model_dir)
    return result


def trained_samples(steps, steps_per_epoch, batch_size, samples):
    """How many samples ``steps`` steps trained on (an epoch's last batch may be short; a sample counts once per
    epoch)."""
    epochs, rest = divmod(steps, steps_per_epoch)
    return epochs * samples + min(rest * batch_size, samples)


def _mean(values):
    return round(sum(values) / len(values), 5) if values else None


def main(argv=None):
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        manifest = run(args)
    except (SampleError, FinetuneError, LLMNotFound, FileNotFoundError, ValueError) as e:
        print(f"llm4msr-align: error: {e}", file=sys.stderr)
        return 1
    print(json.dumps({k: manifest[k] for k in ("samples", "sample_counts", "steps", "trained_samples", "stopped",
                                               "first_loss", "last_loss",
                                               "train_seconds", "evaluation", "eval_file", "knowledge_file")
                      if k in manifest}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
