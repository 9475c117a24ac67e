"""The one door from the knowledge store to the models: vectors aligned to RecBole's internal ids.

Cold-start users (in the dataset but without a vector, e.g. users seen only in valid/test, or a store built with
``--limit_users``) get a row of zeros and ``has_user_knowledge = False``. What the model does with them is its
``knowledge_fallback`` setting (``zeros``: keep the zero vector; ``scenario``: use the row's scenario vector).
"""
import numpy as np
import torch

from recbole_llm4msr.knowledge.store import KnowledgeStore, StoreError


def align_knowledge(store, dataset, expected_dim=None):
    """-> dict(users [n_user_ids, d] float32, has_user [n_user_ids] bool, scenarios [S, d] float32 in the
    dataset's scenario order, dim, coverage). Row ``i`` of ``users`` is RecBole's internal user id ``i``
    (row 0, the padding id, is zeros)."""
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
    users = np.zeros((len(tokens), store.dim), dtype=np.float32)
    idx = np.flatnonzero(has)
    if idx.size:
        store_rows = np.array([rows[i] for i in idx], dtype=np.int64)
        order = np.argsort(store_rows)  # read the memory-mapped file in order
        users[idx[order]] = np.asarray(store.user_vectors[store_rows[order]], dtype=np.float32)
    return {
        "users": torch.from_numpy(users),
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
    out = align_knowledge(path, dataset, expected_dim=config["knowledge_dim"])
    out["path"] = path
    logging.getLogger().info(f"knowledge: {path} ({out['dim']}-d, {out['coverage']:.1%} of the dataset's users "
                             f"have a vector)")
    return out
