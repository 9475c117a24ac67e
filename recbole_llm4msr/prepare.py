"""Everything that must exist before a model is built, done once: the dataset and the knowledge stores.

:func:`prepare` is called by every entry point (``run_recbole`` single-process and distributed -- in the parent,
before the ranks start --, ``objective_function``, ``load_data_and_model``, the benchmarks) before the dataset and
the model are built. It

1. converts a built-in dataset on first use;
2. for a model whose enhancement needs knowledge (``knowledge_kinds``, e.g. LLM4MSR), turns the run's config into a
   :class:`~recbole_llm4msr.knowledge.spec.KnowledgeSpec` (so ``config_files``, ``config_dict`` and the command line
   reach the prompts), then finds the store by its fingerprint or builds it (progress bars, resumable), or checks
   the store given as ``knowledge_store`` against the data; the store's path and every resolved knowledge setting
   are written back into the config (so they appear in the log, the results file and the checkpoint).

Model constructors then only open the store and align its vectors; they never run an LLM.
"""
import os
from logging import getLogger

from recbole_llm4msr.data.builtin import ensure_dataset
from recbole_llm4msr.knowledge.extract import build_knowledge, check_store, plan
from recbole_llm4msr.knowledge.spec import KnowledgeSpec


def knowledge_kinds(config):
    """The knowledge kinds the configured model needs (empty for models without a knowledge enhancement)."""
    from recbole_llm4msr.model.enhancements import ENHANCEMENTS
    from recbole_llm4msr.registry import get_model

    kinds = getattr(get_model(config["model"]), "knowledge_kinds", None)
    if kinds:  # a model that declares its own (TSLRec: item vectors)
        return tuple(kinds)
    enhancement = str(config["enhancement"] or "none").lower()
    cls = ENHANCEMENTS.get(enhancement)
    return tuple(getattr(cls, "knowledge_kinds", ())) if cls is not None else ()


def prepare_knowledge(config):
    """Find, build or check the knowledge store of ``config``; returns its path (also set as ``knowledge_store``)."""
    spec = KnowledgeSpec.from_config(config)
    if spec.store:
        path = check_store(spec.store, spec).path
    else:
        summary = build_knowledge(spec, show_progress=bool(config["show_progress"]))
        if not summary.get("reused"):
            getLogger().info(f"knowledge built: {summary}")
        path = summary["cache"]
    for key, value in spec.config_items().items():
        config[key] = value
    config["knowledge_store"] = path
    if str(config["knowledge_norm"] or "none").lower() == "auto":
        from recbole_llm4msr.knowledge.store import KnowledgeStore
        from recbole_llm4msr.model.enhancements.llm4msr import resolve_auto_norm

        resolve_auto_norm(config, KnowledgeStore(path))
    return path


def auto_norm_choice(config):
    """What ``knowledge_norm: auto`` resolves to for ``config``'s user knowledge, without building anything: the
    kept (or, from a finished store, freshly made: seconds) choice of
    :func:`~recbole_llm4msr.model.enhancements.llm4msr.resolve_auto_norm` when the store --
    ``knowledge_store``, or the one the config's knowledge settings name -- is finished; ``None`` while it is not
    built yet. A concrete ``knowledge_norm`` is returned as it is. (``llm4msr-compare`` hashes a run's config with
    the resolved value, so a run under ``auto`` and one that named the same normalisation are the same run.)"""
    from recbole_llm4msr.knowledge.files import DatasetFiles
    from recbole_llm4msr.knowledge.report import choose_norm
    from recbole_llm4msr.knowledge.store import KnowledgeStore, is_complete

    norm = str(config["knowledge_norm"] or "none").lower()
    if norm != "auto":
        return norm
    spec = KnowledgeSpec.from_config(config)
    path = spec.store or plan(spec).path
    if not is_complete(path):
        return None
    return choose_norm(KnowledgeStore(path), DatasetFiles.from_spec(spec))["chosen"]


def prepare_item_knowledge(config):
    """TSLRec: check the item store given as ``knowledge_store``, or find / build the default one with the TSLRec
    pipeline (pre-train, cluster, SFT, extract; every stage resumable); returns its path (also set in the config)."""
    from recbole_llm4msr.knowledge.items import check_item_store
    from recbole_llm4msr.tslrec.pipeline import item_texts, run
    from recbole_llm4msr.tslrec.settings import TSLRecSettings

    settings = TSLRecSettings.from_config(config)
    if config["knowledge_store"]:
        # the item texts it was built from must still be the dataset's
        path = check_item_store(config["knowledge_store"], config["dataset"], texts=item_texts(settings)).path
    else:
        summary = run(settings, show_progress=bool(config["show_progress"]))
        getLogger().info(f"TSLRec item store: {summary['store']} ({summary['seconds']})")
        path = summary["store"]
    config["knowledge_store"] = path
    return path


def prepare(config):
    """Convert the dataset if it is built in; find / build / check the knowledge stores the model needs."""
    ensure_dataset(config)
    kinds = knowledge_kinds(config)
    if "item" in kinds:
        prepare_item_knowledge(config)
    elif kinds:
        prepare_knowledge(config)
    return config


def make_run_folders(config):
    """RecBole creates ``log/<model>``, ``log_tensorboard`` and the checkpoint folder with exists-then-makedirs in
    every rank; under DDP two ranks race (FileExistsError): make them once, before the ranks start."""
    for folder in ("log", os.path.join("log", config["model"]), "log_tensorboard", config["checkpoint_dir"]):
        os.makedirs(folder, exist_ok=True)
