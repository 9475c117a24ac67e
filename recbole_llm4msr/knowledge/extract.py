"""Knowledge extraction: dataset -> prompts -> frozen LLM -> knowledge store (resumable, shardable, fingerprinted).

Everything takes one :class:`~recbole_llm4msr.knowledge.spec.KnowledgeSpec`:

* :func:`plan` -- where the store for a spec lives and its fingerprint, without loading any model;
* :func:`build_knowledge` -- build (or reuse, or resume) it; ``prepare`` and ``llm4msr-knowledge`` call it;
* :func:`check_store` -- open a store given explicitly and refuse it when its data fingerprint differs;
* :func:`merge_shards` -- merge shards that finished on other machines.

Two ways to a user's vector (``user_vector``, in the fingerprint):

* ``prompt`` (the paper's): the LLM reads one user-level prompt per user (the user's training positives by
  scenario) and a hidden state of it is the vector; the unit of work (chunks, shards, resuming) is the user.
* ``items`` (the default, chosen on the neighbour probe; README "Which knowledge is the default"): the LLM encodes
  the text of every item that is a training positive of some user, once (a sentence encoder: the item text; a
  decoder: :func:`~recbole_llm4msr.knowledge.items.item_prompt`, mean over the item's own tokens by default); a
  user's vector is the mean of the vectors of the user's training positives (every scenario, repeats counted), a user
  without positives gets the population's mean (the mean over every positive row). The unit of work is the item;
  the user vectors are computed when the store is merged, and the store keeps the item vectors beside them. No
  prompt length limit applies: every training positive counts.
"""
import logging
import os
import resource
import time
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from recbole_llm4msr.knowledge import store as kstore
from recbole_llm4msr.knowledge.files import DatasetFiles
from recbole_llm4msr.knowledge.items import item_prompt
from recbole_llm4msr.knowledge.loader import mean_item_vectors
from recbole_llm4msr.knowledge.fingerprint import (
    DATA_PARTS,
    FINGERPRINT_VERSION,
    changed_parts,
    file_digest,
    store_key,
    text_digest,
)
from recbole_llm4msr.knowledge.llm import (
    EncoderLLM,
    KnowledgeLLM,
    encoder_identity,
    file_identity,
    resolve_encoder,
    resolve_llm,
    resolved_dtype,
)
from recbole_llm4msr.knowledge.prompts import PromptBuilder, default_templates
from recbole_llm4msr.knowledge.report import geometry, knowledge_report

logger = logging.getLogger(__name__)


def default_cache_dir():
    return os.path.join(os.environ.get("RECBOLE_LLM4MSR_CACHE",
                                       os.path.join(os.path.expanduser("~"), ".cache", "recbole_llm4msr")),
                        "knowledge")


@dataclass
class Plan:
    path: str
    builder: PromptBuilder
    model_name: str
    fingerprint: dict  # part -> digest

    def users(self, spec):
        users = sorted(self.builder.users(), key=str)
        return users[: int(spec.limit_users)] if spec.limit_users else users

    def items(self, users):
        """The items whose vectors make ``users``' vectors (``user_vector: items``): their training positives."""
        positives = self.builder.user_positive_items()
        return sorted({i for u in users for i in positives.get(u, ())}, key=str)

    def header(self, spec):
        return {"dataset": spec.dataset, "model": self.model_name, "llm": str(spec.llm), "mode": spec.mode,
                "user_vector": spec.user_vector, "pooling": spec.pooling, "llm_dtype": self.fingerprint["dtype"],
                "template_hash": self.builder.template_hash,
                "max_items_per_scenario": spec.max_items_per_scenario, "max_prompt_tokens": spec.max_prompt_tokens,
                "max_new_tokens": spec.max_new_tokens if spec.mode == "generate" else None,
                "limit_users": spec.limit_users, "fingerprint_version": FINGERPRINT_VERSION,
                "fingerprint": self.fingerprint}


def data_fingerprint(files, builder):
    """The parts that tie a store to a dataset (:data:`~recbole_llm4msr.knowledge.fingerprint.DATA_PARTS`)."""
    return {
        "train_split": file_digest(files.train_file),
        "item_texts": text_digest(sorted(builder.item_text.items(), key=lambda kv: str(kv[0]))),
        "scenario_descriptions": text_digest(builder.descriptions),
        "fields": text_digest({"fields": files.field_names(), "positive": " ".join(map(str, files.positive_rule()))}),
    }


def _dataset_view(spec):
    """The dataset files of ``spec`` and the prompt builder over them."""
    files = DatasetFiles.from_spec(spec)
    template_dir, fallback = (spec.template_dir, None) if spec.template_dir else default_templates(spec.mode)
    return files, PromptBuilder(files, template_dir, spec.max_items_per_scenario, spec.max_prompt_tokens,
                                fallback_dir=fallback)


def plan(spec, llm_model=None):
    """Where the store for ``spec`` lives and its fingerprint, without loading any model. ``llm_model``: an
    already loaded :class:`KnowledgeLLM` / :class:`EncoderLLM` (its own weights and dtype are fingerprinted)."""
    files, builder = _dataset_view(spec)
    if llm_model is not None:
        name, identity, dtype = llm_model.name, llm_model.identity, llm_model.dtype
    elif spec.mode == "encoder":
        name, identity, dtype = resolve_encoder(spec.llm)[0], encoder_identity(spec.llm), "float32"
    else:
        name, identity, dtype = resolve_llm(spec.llm)[0], file_identity(spec.llm), resolved_dtype(spec.dtype,
                                                                                                    spec.device)
    parts = data_fingerprint(files, builder)
    pooling = "mean" if spec.mode == "encoder" else spec.pooling  # a sentence encoder always mean-pools
    parts.update(prompts=builder.template_hash, llm=identity, mode=spec.mode, pooling=pooling, dtype=dtype,
                 max_new_tokens=spec.max_new_tokens if spec.mode == "generate" else None,
                 limit_users=spec.limit_users)
    if spec.user_vector != "prompt":  # only where it differs from the paper's: stores of before it existed keep their key
        parts["user_vector"] = spec.user_vector
    path = kstore.store_path(spec.cache_dir or default_cache_dir(), spec.dataset, name, spec.mode, store_key(parts))
    return Plan(path, builder, name, parts)


def check_store(path, spec):
    """Open the finished store at ``path`` for ``spec``'s dataset; a store built from other data (another split,
    other descriptions or item texts, other fields) is refused, naming what changed."""
    store = kstore.KnowledgeStore(path).require_dataset(spec.dataset)
    files, builder = _dataset_view(spec)
    changed = changed_parts(store.fingerprint, data_fingerprint(files, builder), DATA_PARTS)
    if changed:
        raise kstore.StoreError(
            f"knowledge store {path} does not match dataset '{spec.dataset}' in {files.folder}: "
            f"{', '.join(_describe(c) for c in changed)} changed since it was built, so its prompts describe other "
            f"data (e.g. training positives of another split). Rebuild it: drop knowledge_store to build the default "
            f"store, or run llm4msr-knowledge --dataset={spec.dataset}")
    return store


def _describe(part):
    return {"train_split": "the training split (another conversion or split seed?)",
            "item_texts": "the item texts", "scenario_descriptions": "the scenario descriptions",
            "fields": "the field names"}.get(part, part)


def load_llm(spec):
    logger.warning(f"loading LLM '{spec.llm}' for knowledge extraction ({spec.mode} mode, device {spec.device})")
    if spec.mode == "encoder":
        return EncoderLLM.load(spec.llm, device=spec.device)
    return KnowledgeLLM.load(spec.llm, device=spec.device, dtype=spec.dtype, trust_remote_code=spec.trust_remote_code,
                             max_new_tokens=spec.max_new_tokens)


def build_knowledge(spec, llm_model=None, num_shards=1, shard_id=0, show_progress=True):
    """Build (or reuse, or resume) the store of ``spec``; returns a summary dict (``cache`` is the store path).

    With ``num_shards > 1`` this process handles users ``shard_id::num_shards`` (shard 0 also does the scenarios)
    and the store is merged by whichever shard finishes last (or later by :func:`merge_shards`).
    ``llm_model`` may be an already loaded :class:`KnowledgeLLM` / :class:`EncoderLLM` (tests, notebooks).
    """
    start = time.perf_counter()
    p = plan(spec, llm_model)
    path, builder = p.path, p.builder
    scenarios = builder.scenarios
    users = p.users(spec)
    summary = {"cache": path, "users": len(users), "scenarios": len(scenarios)}
    if kstore.is_complete(path):
        store = kstore.KnowledgeStore(path)
        logger.info(f"knowledge store {path} exists: reusing it")
        return dict(summary, dim=store.dim, seconds=round(time.perf_counter() - start, 2), users_per_s=None,
                    reused=True)

    items_mode = spec.user_vector == "items"
    kind = "item" if items_mode else "user"
    work = p.items(users) if items_mode else users
    writer = kstore.ShardWriter(path, shard_id, num_shards)
    mine = work[shard_id::num_shards]
    done = writer.done_ids(kind)
    todo = [u for u in mine if u not in done]
    do_scenarios = shard_id == 0 and len(writer.done_ids("scenario")) < len(scenarios)
    if done:
        logger.warning(f"resuming {path}: {len(done)} of this shard's {len(mine)} {kind}s are already done")

    model = llm_model
    load_seconds = 0.0
    if (todo or do_scenarios) and model is None:
        t = time.perf_counter()
        model = load_llm(spec)
        load_seconds = time.perf_counter() - t
    if model is not None:
        builder.count_tokens = model.count_tokens
    tokens_before = getattr(model, "tokens_processed", 0)
    encode_mode = "prompt" if spec.mode == "encoder" else spec.mode

    if do_scenarios:
        prompts = builder.scenario_prompts()
        vecs, texts = model.encode([prompts[s] for s in scenarios], encode_mode, spec.batch_size,
                                   pooling=spec.pooling)
        writer.write_chunk("scenario", scenarios, vecs, [
            {"kind": "scenario", "id": s, "prompt": prompts[s], "text": t} for s, t in zip(scenarios, texts)])

    if items_mode:  # a sentence encoder embeds the item text itself; a decoder reads it in the item template
        raw = spec.mode == "encoder"
        reference = None if raw else item_prompt("")  # where an item's own tokens start (mean pooling)
        chunk_size = spec.chunk_size * 16
        untexted = [i for i in todo if not str(builder.item_text.get(i) or "").strip()]
        if untexted:  # as in the user prompts: the id stands in for a missing text, said once
            logger.warning(f"{spec.dataset}: {len(untexted)} of {len(todo)} items have no text in item_text_fields "
                           f"(e.g. {untexted[:3]}): their vectors encode 'item <id>'")

        def render(chunk):
            texts = {i: builder.item_text.get(i) or f"item {i}" for i in chunk}
            return {i: texts[i] if raw else item_prompt(texts[i]) for i in chunk}
    else:
        reference = builder.user_prompt({})  # where a user's own tokens start and end (mean pooling)
        chunk_size = spec.chunk_size

        def render(chunk):
            return builder.user_prompts(chunk)
    t_work = time.perf_counter()
    bar = tqdm(total=len(mine), initial=len(mine) - len(todo), desc=f"knowledge {spec.dataset} ({spec.mode})",
               unit=kind, disable=not show_progress)
    for i in range(0, len(todo), chunk_size):
        chunk = todo[i:i + chunk_size]
        prompts = render(chunk)
        vecs, texts = model.encode([prompts[u] for u in chunk], encode_mode, spec.batch_size, progress=bar.update,
                                   pooling=spec.pooling, reference=reference)
        writer.write_chunk(kind, chunk, vecs, [
            {"kind": kind, "id": u, "prompt": prompts[u], "text": t} for u, t in zip(chunk, texts)])
    bar.close()
    work_seconds = time.perf_counter() - t_work
    writer.mark_done({"shard_id": shard_id, "num_shards": num_shards, f"{kind}s": len(mine)})

    status = kstore.shard_status(path)
    merged = len(status) == num_shards and all(v is not None for v in status.values())
    if merged:
        with kstore.MergeLock(path) as lock:
            if lock.held and not kstore.is_complete(path):
                _merge(path, p, spec, users)
            elif not lock.held:
                merged = False  # another shard finished at the same moment and is merging
                logger.info(f"{path}: another shard is merging the store")
    tokens = getattr(model, "tokens_processed", 0) - tokens_before
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return dict(summary, dim=getattr(model, "hidden_size", None) or (kstore.KnowledgeStore(path).dim if merged else None),
                seconds=round(seconds, 2), load_seconds=round(load_seconds, 2),
                unit=kind, done=len(todo), users_done=len(todo) if kind == "user" else None,
                per_s=round(len(todo) / work_seconds, 2) if todo and work_seconds else None,
                users_per_s=round(len(todo) / work_seconds, 2) if todo and work_seconds and kind == "user" else None,
                tokens_per_s=round(tokens / work_seconds, 1) if todo and work_seconds else None,
                shard=f"{shard_id}/{num_shards}", merged=merged, reused=False, peak_rss_mb=round(peak_mb))


def merge_shards(spec):
    """Merge finished shards into the store (for runs whose shards finished on other machines)."""
    p = plan(spec)
    with kstore.MergeLock(p.path, force=True):
        _merge(p.path, p, spec, p.users(spec))
    return p.path


def _merge(path, p, spec, users):
    """Merge the finished shards of ``path`` (user vectors made from the item vectors first, ``items`` mode) and
    record the geometry."""
    ids = {"scenario": p.builder.scenarios, "user": users}
    if spec.user_vector == "items":
        items = p.items(users)
        _users_from_items(path, users, p.builder.user_positive_items())
        ids = {"scenario": p.builder.scenarios, "item": items, "user": users}
    kstore.merge(path, p.header(spec), ids)
    _record_geometry(path)


def _users_from_items(path, users, positives):
    """``user_vector: items``: each user's vector from the item vectors (``user_means``), written as one chunk of kind
    ``user`` beside shard 0's chunks (skipped when already there: resuming a killed merge); the shards have finished,
    so their DONE files say how many there are."""
    num_shards = next((int(v["num_shards"]) for v in kstore.shard_status(path).values() if v), 1)
    writer = kstore.ShardWriter(path, 0, num_shards)
    if set(users) <= writer.done_ids("user"):
        return
    ids, vectors = kstore.chunk_vectors(path, "item")
    if vectors is None:
        ids, vectors = [], np.zeros((0, 1), np.float32)
    try:
        out, per_user = user_means(users, positives, ids, vectors)
    except KeyError as e:
        raise kstore.StoreError(f"{path}: {e.args[0]}; run the missing shards before merging") from None
    writer.write_chunk("user", users, out, [
        {"kind": "user", "id": u, "prompt": None, "text": None, "positives": int(k)} for u, k in zip(users, per_user)])


def user_means(users, positives, item_ids, item_vectors):
    """Each user's vector as the mean of the vectors of the user's training positives (``positives``: user -> item
    ids, repeats counted), one sparse product; a user without positives gets the mean over every positive row.
    Returns ``(vectors float32 [len(users), dim], positives per user)``; an item without a vector is a ``KeyError``
    naming how many and which."""
    row = {str(t): n for n, t in enumerate(item_ids)}
    missing = sorted({str(i) for u in users for i in positives.get(u, ()) if str(i) not in row}, key=str)
    if missing:
        raise KeyError(f"{len(missing)} item(s) have no vector yet (e.g. {missing[:3]})")
    pairs = [(n, row[str(i)]) for n, u in enumerate(users) for i in positives.get(u, ())]
    r, c = (np.array(x, dtype=np.int64) for x in zip(*pairs)) if pairs else (np.zeros(0, np.int64),) * 2
    return mean_item_vectors(r, c, len(users), item_vectors)


def _record_geometry(path):
    """The cheap part of the knowledge report, into the header of every store built (see report.geometry)."""
    store = kstore.KnowledgeStore(path)
    g = geometry(np.asarray(store.vectors("user"), dtype=np.float32))
    kstore.update_header(path, geometry=g)
    logger.info(f"knowledge store {path}: user vectors {g}")


def report(spec, path, k=20, plot=True):
    """The full knowledge report of the store at ``path`` on ``spec``'s dataset: report.json + report.png beside
    it, with the normalisation ``knowledge_norm: auto`` would pick (``knowledge_norm_auto``)."""
    store = kstore.KnowledgeStore(path).require_dataset(spec.dataset)
    return knowledge_report(store, DatasetFiles.from_spec(spec), out_dir=store.path, k=k, plot=plot, norm_choice=True)


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
