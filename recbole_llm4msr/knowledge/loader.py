"""The one door from the knowledge store to the models: vectors aligned to RecBole's internal ids.

Cold-start users (in the dataset but without a vector, e.g. users seen only in valid/test, or a store built with
``--limit_users``) get a row of zeros and ``has_user_knowledge = False``. What the model does with them is its
``knowledge_fallback`` setting (``zeros``: keep the zero vector; ``scenario``: use the row's scenario vector).
"""
import numpy as np
import torch

from recbole_llm4msr.knowledge.store import KnowledgeStore, StoreError


MMAP_ABOVE_BYTES = 1 << 30  # knowledge_memory: auto -> memory-mapped when the float32 user table would exceed 1 GiB


def align_knowledge(store, dataset, expected_dim=None, memory="load"):
    """-> dict(users [n_user_ids, d] float32 (``memory="load"``) or None (``"mmap"``), user_rows [n_user_ids]
    int64 (row in the store's memory-mapped file, -1 without a vector), has_user [n_user_ids] bool, scenarios
    [S, d] float32 in the dataset's scenario order, dim, coverage, memory). Row ``i`` of ``users`` is RecBole's
    internal user id ``i`` (row 0, the padding id, is zeros)."""
    if not isinstance(store, KnowledgeStore):
        store = KnowledgeStore(store)
    name = dataset.dataset_name
    if store.header.get("dataset") != name:
        raise StoreError(f"knowledge store {store.path} was built for dataset '{store.header.get('dataset')}', not "
                         f"'{name}'; build one for '{name}' (llm4msr-knowledge --dataset={name})")
    if expected_dim is not None and int(expected_dim) != store.dim:
        raise StoreError(f"knowledge dimension mismatch: the model expects {expected_dim}-d knowledge, store "
                         f"{store.path} holds {store.dim}-d vectors (model {store.header.get('model')}); use the "
                         f"store of the LLM the model was trained with, or retrain")
    scen_field = dataset.scenario_field
    names = list(dataset.field2id_token[scen_field][1:])
    missing = [s for s in names if s not in store.scenario_names]
    if missing:
        raise StoreError(f"knowledge store {store.path} has no vector for scenario(s) {missing} of dataset '{name}' "
                         f"(store scenarios: {store.scenario_names}); rebuild the store")
    scen_row = {s: i for i, s in enumerate(store.scenario_names)}
    scenarios = np.stack([np.asarray(store.scenario_vectors[scen_row[s]], dtype=np.float32) for s in names])

    tokens = dataset.field2id_token[dataset.uid_field]
    rows = np.array([store.user_row(t) if i > 0 else None for i, t in enumerate(tokens)], dtype=object)
    has = np.array([r is not None for r in rows], dtype=bool)
    if len(tokens) > 1 and not has[1:].any():
        raise StoreError(f"knowledge store {store.path} holds none of the {len(tokens) - 1} users of dataset "
                         f"'{name}': user ids do not match (store built from other data?); rebuild the store")
    user_rows = np.full(len(tokens), -1, dtype=np.int64)
    idx = np.flatnonzero(has)
    user_rows[idx] = [rows[i] for i in idx]
    if memory == "auto":
        memory = "mmap" if len(tokens) * store.dim * 4 > MMAP_ABOVE_BYTES else "load"
    if memory not in ("load", "mmap"):
        raise ValueError(f"knowledge_memory must be auto, load or mmap, not '{memory}'")
    users = None if memory == "mmap" else np.zeros((len(tokens), store.dim), dtype=np.float32)
    if idx.size and users is not None:
        store_rows = np.array([rows[i] for i in idx], dtype=np.int64)
        order = np.argsort(store_rows)  # read the memory-mapped file in order
        users[idx[order]] = np.asarray(store.user_vectors[store_rows[order]], dtype=np.float32)
    return {
        "users": None if users is None else torch.from_numpy(users),
        "user_rows": user_rows,
        "memory": memory,
        "has_user": torch.from_numpy(has),
        "scenarios": torch.from_numpy(scenarios),
        "dim": store.dim,
        "coverage": float(has[1:].mean()) if len(tokens) > 1 else 0.0,
        "store": store,
    }


def find_or_build_store(config):
    """The store an LLM4MSR model uses: ``knowledge_store`` if set, else the one for the config's LLM settings,
    built on first use (logged, with progress) and reused afterwards."""
    import logging
    import os

    from recbole_llm4msr.knowledge.extract import build_knowledge

    if config["knowledge_store"]:
        return config["knowledge_store"]
    logger = logging.getLogger()
    data_path = os.path.dirname(os.path.normpath(config["data_path"]))
    summary = build_knowledge(
        config["dataset"], data_path=data_path, llm=config["llm"] or "smollm2", mode=config["llm_mode"] or "prompt",
        cache_dir=config["knowledge_cache_dir"], batch_size=config["llm_batch_size"] or 16,
        max_new_tokens=config["llm_max_new_tokens"] or 32, device=config["llm_device"] or "cpu",
        dtype=config["llm_dtype"] or "auto", template_dir=config["prompt_template_dir"],
        max_items_per_scenario=config["prompt_max_items_per_scenario"] or 10,
        max_prompt_tokens=config["prompt_max_tokens"] or 320, trust_remote_code=bool(config["llm_trust_remote_code"]),
        show_progress=bool(config["show_progress"]),
    )
    if not summary.get("reused"):
        logger.info(f"knowledge built: {summary}")
    return summary["cache"]


def load_for_model(config, dataset):
    """Vectors for a model: :func:`find_or_build_store` then :func:`align_knowledge` (checks dataset, dimension)."""
    import logging

    path = find_or_build_store(config)
    out = align_knowledge(path, dataset, expected_dim=config["knowledge_dim"],
                          memory=str(config["knowledge_memory"] or "auto").lower())
    out["path"] = path
    logging.getLogger().info(f"knowledge: {path} ({out['dim']}-d, {out['coverage']:.1%} of the dataset's users "
                             f"have a vector; user table {out['memory']})")
    return out


class UserKnowledge(torch.nn.Module):
    """Users' knowledge vectors by RecBole internal user id (``forward(uid) -> [B, d]`` float32, zeros for users
    without a vector).

    ``load``: one float32 table in this process's memory (a non-persistent buffer: it moves with the model and is
    never written into checkpoints). ``mmap``: only the rows a batch needs are read from the store's
    memory-mapped float16 file; the operating system's page cache is shared by every process on the machine, so
    N training workers hold the store once, not N times.
    """

    def __init__(self, aligned):
        super().__init__()
        self.memory, self.dim = aligned["memory"], int(aligned["dim"])
        self.register_buffer("has", aligned["has_user"], persistent=False)
        self._rows = np.asarray(aligned["user_rows"])
        self._source = aligned["store"].user_vectors if self.memory == "mmap" else None
        if self.memory == "load":
            self.register_buffer("table", aligned["users"], persistent=False)

    def forward(self, uid):
        if self.memory == "load":
            return self.table[uid]
        rows = self._rows[uid.detach().cpu().numpy()]
        out = np.zeros((len(rows), self.dim), dtype=np.float32)
        ok = rows >= 0
        if ok.any():
            unique, inverse = np.unique(rows[ok], return_inverse=True)  # sorted: the file is read in order
            out[ok] = np.asarray(self._source[unique], dtype=np.float32)[inverse]
        return torch.from_numpy(out).to(self.has.device)
