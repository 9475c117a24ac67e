"""Knowledge extraction: dataset -> prompts -> frozen LLM -> knowledge store (resumable, shardable).

:func:`build_knowledge` is what ``llm4msr-knowledge`` and ``run_recbole`` (for LLM4MSR models, on first use) call.
"""
import logging
import os
import resource
import time

from tqdm import tqdm

from recbole_llm4msr.knowledge import store as kstore
from recbole_llm4msr.knowledge.files import DatasetFiles
from recbole_llm4msr.knowledge.llm import EncoderLLM, KnowledgeLLM, resolve_llm
from recbole_llm4msr.knowledge.prompts import PromptBuilder

logger = logging.getLogger(__name__)

DEFAULTS = dict(llm="smollm2", mode="prompt", batch_size=16, max_new_tokens=32, device="cpu", dtype="auto",
                template_dir=None, max_items_per_scenario=10, max_prompt_tokens=320, chunk_size=64)


def default_cache_dir():
    return os.path.join(os.environ.get("RECBOLE_LLM4MSR_CACHE",
                                       os.path.join(os.path.expanduser("~"), ".cache", "recbole_llm4msr")),
                        "knowledge")


def _header(dataset, name, llm, mode, builder, max_new_tokens, limit_users):
    return {"dataset": dataset, "model": name, "llm": str(llm), "mode": mode, "template_hash": builder.template_hash,
            "max_items_per_scenario": builder.max_items_per_scenario, "max_prompt_tokens": builder.max_prompt_tokens,
            "max_new_tokens": max_new_tokens if mode == "generate" else None, "limit_users": limit_users}


def plan(dataset, data_path="dataset/", llm="smollm2", mode="prompt", cache_dir=None, template_dir=None,
         max_items_per_scenario=10, max_prompt_tokens=320, limit_users=None, config_files=(), **_):
    """Where the store for these settings lives, without loading any model: (path, builder, model name)."""
    if mode not in ("prompt", "generate", "encoder"):
        raise ValueError(f"--mode must be prompt, generate or encoder, not '{mode}'")
    files = DatasetFiles.locate(dataset, data_path, config_files)
    builder = PromptBuilder(files, template_dir, max_items_per_scenario, max_prompt_tokens)
    if mode == "encoder":
        name = os.path.basename(os.path.normpath(str(llm)))
    else:
        name = resolve_llm(llm)[0]
    tag = builder.template_hash + (f"-limit{int(limit_users)}" if limit_users else "")
    path = kstore.store_path(cache_dir or default_cache_dir(), dataset, name, mode, tag)
    return path, builder, name


def build_knowledge(dataset, data_path="dataset/", llm="smollm2", mode="prompt", cache_dir=None, batch_size=16,
                    max_new_tokens=32, device="cpu", dtype="auto", template_dir=None, max_items_per_scenario=10,
                    max_prompt_tokens=320, num_shards=1, shard_id=0, limit_users=None, chunk_size=64,
                    config_files=(), trust_remote_code=False, show_progress=True, llm_model=None):
    """Build (or reuse, or resume) the knowledge store; returns a summary dict (``cache`` is the store path).

    With ``num_shards > 1`` this process handles users ``shard_id::num_shards`` (shard 0 also does the scenarios)
    and the store is merged by whichever shard finishes last (or later by :func:`merge_shards`).
    ``llm_model`` may be an already loaded :class:`KnowledgeLLM` / :class:`EncoderLLM` (tests, notebooks).
    """
    start = time.perf_counter()
    path, builder, name = plan(dataset, data_path, llm, mode, cache_dir, template_dir, max_items_per_scenario,
                               max_prompt_tokens, limit_users, config_files)
    scenarios = builder.scenarios
    users = sorted(builder.users(), key=str)
    if limit_users:
        users = users[: int(limit_users)]
    summary = {"cache": path, "users": len(users), "scenarios": len(scenarios)}
    if kstore.is_complete(path):
        store = kstore.KnowledgeStore(path)
        logger.info(f"knowledge store {path} exists: reusing it")
        return dict(summary, dim=store.dim, seconds=round(time.perf_counter() - start, 2), users_per_s=None,
                    reused=True)

    writer = kstore.ShardWriter(path, shard_id, num_shards)
    mine = users[shard_id::num_shards]
    done = writer.done_ids("user")
    todo = [u for u in mine if u not in done]
    do_scenarios = shard_id == 0 and len(writer.done_ids("scenario")) < len(scenarios)
    if done:
        logger.warning(f"resuming {path}: {len(done)} of this shard's {len(mine)} users are already done")

    model = llm_model
    load_seconds = 0.0
    if (todo or do_scenarios) and model is None:
        t = time.perf_counter()
        logger.warning(f"loading LLM '{llm}' for knowledge extraction ({mode} mode, device {device})")
        if mode == "encoder":
            model = EncoderLLM.load(llm, device=device)
        else:
            model = KnowledgeLLM.load(llm, device=device, dtype=dtype, trust_remote_code=trust_remote_code,
                                      max_new_tokens=max_new_tokens)
        load_seconds = time.perf_counter() - t
    if model is not None:
        builder.count_tokens = model.count_tokens
    tokens_before = getattr(model, "tokens_processed", 0)
    encode_mode = "prompt" if mode == "encoder" else mode

    if do_scenarios:
        prompts = builder.scenario_prompts()
        vecs, texts = model.encode([prompts[s] for s in scenarios], encode_mode, batch_size)
        writer.write_chunk("scenario", scenarios, vecs, [
            {"kind": "scenario", "id": s, "prompt": prompts[s], "text": t} for s, t in zip(scenarios, texts)])

    t_users = time.perf_counter()
    bar = tqdm(total=len(mine), initial=len(mine) - len(todo), desc=f"knowledge {dataset} ({mode})", unit="user",
               disable=not show_progress)
    for i in range(0, len(todo), chunk_size):
        chunk = todo[i:i + chunk_size]
        prompts = builder.user_prompts(chunk)
        vecs, texts = model.encode([prompts[u] for u in chunk], encode_mode, batch_size, progress=bar.update)
        writer.write_chunk("user", chunk, vecs, [
            {"kind": "user", "id": u, "prompt": prompts[u], "text": t} for u, t in zip(chunk, texts)])
    bar.close()
    user_seconds = time.perf_counter() - t_users
    writer.mark_done({"shard_id": shard_id, "num_shards": num_shards, "users": len(mine)})

    header = _header(dataset, name, llm, mode, builder, max_new_tokens, limit_users)
    header["llm_dtype"] = getattr(model, "dtype", None)
    status = kstore.shard_status(path)
    merged = len(status) == num_shards and all(v is not None for v in status.values())
    if merged:
        with kstore.MergeLock(path) as lock:
            if lock.held and not kstore.is_complete(path):
                kstore.merge(path, header, scenarios, users)
            elif not lock.held:
                merged = False  # another shard finished at the same moment and is merging
                logger.info(f"{path}: another shard is merging the store")
    tokens = getattr(model, "tokens_processed", 0) - tokens_before
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return dict(summary, dim=getattr(model, "hidden_size", None) or (kstore.KnowledgeStore(path).dim if merged else None),
                seconds=round(seconds, 2), load_seconds=round(load_seconds, 2),
                users_done=len(todo), users_per_s=round(len(todo) / user_seconds, 2) if todo and user_seconds else None,
                tokens_per_s=round(tokens / user_seconds, 1) if todo and user_seconds else None,
                shard=f"{shard_id}/{num_shards}", merged=merged, reused=False, peak_rss_mb=round(peak_mb))


def merge_shards(dataset, **kwargs):
    """Merge finished shards into the store (for runs whose shards finished on other machines)."""
    path, builder, name = plan(dataset, **kwargs)
    users = sorted(builder.users(), key=str)
    if kwargs.get("limit_users"):
        users = users[: int(kwargs["limit_users"])]
    header = _header(dataset, name, kwargs.get("llm", "smollm2"), kwargs.get("mode", "prompt"), builder,
                     kwargs.get("max_new_tokens", 32), kwargs.get("limit_users"))
    with kstore.MergeLock(path, force=True):
        return kstore.merge(path, header, builder.scenarios, users)


def shard_from_env(environ=None):
    """``(shard_id, num_shards, launcher)`` from the launcher's environment, or ``None`` outside one.

    * torchrun / ``torch.distributed.launch``: ``RANK`` of ``WORLD_SIZE`` (``LOCAL_RANK`` picks the GPU);
    * SLURM job array (``sbatch --array=0-7``): ``SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN`` of
      ``SLURM_ARRAY_TASK_COUNT``;
    * SLURM tasks (``srun --ntasks=8``): ``SLURM_PROCID`` of ``SLURM_NTASKS``.
    """
    env = os.environ if environ is None else environ
    if "WORLD_SIZE" in env and "RANK" in env:
        return int(env["RANK"]), int(env["WORLD_SIZE"]), "torchrun"
    if "SLURM_ARRAY_TASK_ID" in env and "SLURM_ARRAY_TASK_COUNT" in env:
        first = int(env.get("SLURM_ARRAY_TASK_MIN", 0))
        return int(env["SLURM_ARRAY_TASK_ID"]) - first, int(env["SLURM_ARRAY_TASK_COUNT"]), "slurm-array"
    if "SLURM_PROCID" in env and int(env.get("SLURM_NTASKS", 1)) > 1:
        return int(env["SLURM_PROCID"]), int(env["SLURM_NTASKS"]), "slurm-tasks"
    return None
