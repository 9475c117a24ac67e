"""run_recbole / objective_function / load_data_and_model with this package's resolution.

Same signatures and return values as ``recbole.quick_start``; in addition every context-aware run logs a
per-scenario table for the best validation and the test results and writes them as JSON (``results_file``).
"""
import logging
import sys
import time
from dataclasses import dataclass
from logging import getLogger
from typing import Any

from recbole.data import data_preparation
from recbole.utils import init_logger, init_seed, set_color

from recbole_llm4msr.compat import ensure_numpy_aliases, torch_load
from recbole_llm4msr.config import MultiScenarioConfig
from recbole_llm4msr.distributed import resolve_backend
from recbole_llm4msr.interpret import interpret
from recbole_llm4msr.prepare import make_run_folders, prepare
from recbole_llm4msr.registry import create_dataset, get_model, get_trainer
from recbole_llm4msr.results import (
    default_results_path,
    format_table,
    json_safe_config,
    nested_result,
    write_results,
)


def _reset_logger():
    # RecBole's init_logger adds handlers to the root logger every time; a second run in the same process
    # (tests, hyper-parameter search) would otherwise keep writing into the first run's log file.
    root = getLogger()
    for handler in root.handlers[:]:
        root.removeHandler(handler)
        handler.close()


def _scenario_counts(dataset):
    if not hasattr(dataset, "scenario_statistics"):
        return None
    return {name: s["interactions"] for name, s in dataset.scenario_statistics().items()}


def run(model, dataset, config_file_list=None, config_dict=None, saved=True, nproc=1, world_size=-1,
        ip="localhost", port="5678", group_offset=0):
    """Entry point of the console script (RecBole's ``run`` signature). ``nproc > 1`` or ``world_size > 0``:
    distributed data-parallel training on RecBole's DDP (:mod:`recbole_llm4msr.distributed`), one process per GPU
    or, on CPUs, per ``nproc``; several machines: the same command on each with ``world_size`` (all processes),
    ``ip``/``port`` of the first machine and ``group_offset`` (the global rank of this machine's first process)."""
    if nproc == 1 and world_size <= 0:
        return run_recbole(model=model, dataset=dataset, config_file_list=config_file_list, config_dict=config_dict,
                           saved=saved)
    import torch.multiprocessing as mp

    if nproc < 1:
        raise ValueError(f"nproc must be >= 1, not {nproc}")
    world_size = nproc if world_size <= 0 else world_size
    if group_offset + nproc > world_size:
        raise ValueError(f"group_offset={group_offset} + nproc={nproc} exceeds world_size={world_size}")
    config_dict = dict(config_dict or {})
    config_dict.update(prepare_distributed(model, dataset, config_file_list, config_dict, nproc))
    config_dict.update({"world_size": world_size, "ip": ip, "port": port, "nproc": nproc, "offset": group_offset})
    queue = mp.get_context("spawn").SimpleQueue()
    mp.spawn(_distributed_worker, args=(model, dataset, config_file_list, config_dict, saved, queue), nprocs=nproc,
             join=True)
    return None if queue.empty() else queue.get()


def prepare_distributed(model, dataset, config_file_list, config_dict, nproc=1):
    """Work that must happen once, before the ranks start: the backend and the GPU count checked for ``nproc``
    processes (:func:`~recbole_llm4msr.distributed.resolve_backend`), :func:`~recbole_llm4msr.prepare.prepare` (dataset,
    knowledge store: two ranks doing either at once would race) and the run folders. Returns settings for the
    ranks (``knowledge_store``, and ``knowledge_norm`` as ``auto`` resolved it)."""
    config = MultiScenarioConfig(model=model, dataset=dataset, config_file_list=config_file_list,
                                 config_dict=config_dict)
    resolve_backend({**config.final_config_dict, "nproc": nproc})  # too few GPUs: said before any work or process
    prepare(config)
    make_run_folders(config)
    if not config["knowledge_store"]:
        return {}
    out = {"knowledge_store": config["knowledge_store"]}
    if config["knowledge_norm"]:
        out["knowledge_norm"] = config["knowledge_norm"]
    return out


def _distributed_worker(local_rank, model, dataset, config_file_list, config_dict, saved, queue):
    import torch.distributed as dist

    try:
        run_recbole(model=model, dataset=dataset, config_file_list=config_file_list,
                    config_dict=dict(config_dict, local_rank=local_rank), saved=saved, queue=queue)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


@dataclass
class Built:
    """What :func:`build` returns: the config, the dataset, its three loaders, the model and its trainer."""

    config: Any
    dataset: Any
    train_data: Any
    valid_data: Any
    test_data: Any
    model: Any
    trainer: Any


def build(config, quiet=False, log=True):
    """The one builder behind ``run_recbole``, ``objective_function`` and ``load_data_and_model``: seed, logger,
    :func:`~recbole_llm4msr.prepare.prepare` (dataset conversion, knowledge stores), dataset and loaders, model,
    trainer. Seeds: ``seed`` before the data, ``seed + local_rank`` before the model (``local_rank`` is 0 in one
    process, so every entry point builds the same model from the same seed)."""
    init_seed(config["seed"], config["reproducibility"])
    _reset_logger()
    init_logger(config)
    if quiet:
        logging.basicConfig(level=logging.ERROR)
    logger = getLogger()
    prepare(config)
    if log:
        logger.info(sys.argv)
        logger.info(config)
    dataset = create_dataset(config)
    if log:
        logger.info(dataset)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    init_seed(config["seed"] + (config["local_rank"] or 0), config["reproducibility"])
    model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
    if log:
        logger.info(model)
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    return Built(config, dataset, train_data, valid_data, test_data, model, trainer)


def run_recbole(model=None, dataset=None, config_file_list=None, config_dict=None, saved=True, queue=None):
    """Train and test ``model`` on ``dataset``; returns RecBole's result dict plus ``results_file`` (CTR runs)."""
    config = MultiScenarioConfig(model=model, dataset=dataset, config_file_list=config_file_list,
                                 config_dict=config_dict)
    built = build(config)
    logger = getLogger()
    dataset, model, trainer = built.dataset, built.model, built.trainer
    train_data, valid_data, test_data = built.train_data, built.valid_data, built.test_data
    if config["resume"]:
        trainer.resume_checkpoint(config["resume"])
    best_valid_score, best_valid_result = trainer.fit(
        train_data, valid_data, saved=saved, show_progress=config["show_progress"]
    )
    eval_start = time.perf_counter()
    test_result = trainer.evaluate(test_data, load_best_model=saved, show_progress=config["show_progress"])
    eval_seconds = time.perf_counter() - eval_start

    logger.info(set_color("best valid ", "yellow") + f": {best_valid_result}")
    logger.info(set_color("test result", "yellow") + f": {test_result}")
    result = {
        "model": config["model"],
        "best_valid_score": best_valid_score,
        "valid_score_bigger": config["valid_metric_bigger"],
        "best_valid_result": best_valid_result,
        "test_result": test_result,
    }
    epoch_seconds = getattr(trainer, "train_epoch_seconds", None)
    if epoch_seconds:
        result["train_seconds_per_epoch"] = sum(epoch_seconds) / len(epoch_seconds)
        result["epochs_trained"] = len(epoch_seconds)
    result["num_parameters"] = sum(p.numel() for p in model.parameters())
    sampler = getattr(test_data, "sampler", None)
    rows_here = getattr(sampler, "num_samples", None) or len(test_data._dataset)  # DDP: this rank's shard
    result["test_ms_per_1000"] = eval_seconds / max(1, rows_here) * 1e6  # incl. checkpoint load
    if getattr(trainer, "last_checkpoint_file", None):
        result["last_checkpoint"] = trainer.last_checkpoint_file
    result["checkpoint"] = trainer.saved_model_file if saved else None

    valid_counts, test_counts = _scenario_counts(valid_data._dataset), _scenario_counts(test_data._dataset)
    if valid_counts is not None and test_counts is not None:
        names = dataset.scenario_names
        payload = {
            "model": config["model"],
            "dataset": config["dataset"],
            "config": json_safe_config(config),
            "best_valid": nested_result(best_valid_result, names, valid_counts),
            "test": nested_result(test_result, names, test_counts),
            "timing": {k: result.get(k) for k in ("train_seconds_per_epoch", "epochs_trained", "test_ms_per_1000")},
            "num_parameters": result["num_parameters"],
        }
        enhancement = interpret(model, test_data)
        if enhancement is not None:
            payload["enhancement"] = enhancement
            logger.info(set_color("enhancement", "yellow") + f": {enhancement}")
        for title, key in (("best valid", "best_valid"), ("test", "test")):
            if payload[key] is not None:
                logger.info(format_table(set_color(f"{title} per scenario", "yellow"), payload[key]))
        if not config["single_spec"]:
            payload["distributed"] = {"world_size": config["world_size"], "backend": config["ddp_backend"],
                                      "metrics": "computed on all ranks' rows gathered (exact)"}
        path = config["results_file"] or default_results_path(config)
        if config["local_rank"] == 0:
            write_results(path, payload)
            logger.info(set_color("results written to", "blue") + f": {path}")
        result["results_file"] = path
        result["results"] = payload

    if config["local_rank"] == 0 and queue is not None:
        queue.put(result)
    return result


def objective_function(config_dict=None, config_file_list=None, saved=True):
    """The objective for RecBole's HyperTuning, with our resolution; quiet logging."""
    config = MultiScenarioConfig(config_dict=config_dict, config_file_list=config_file_list)
    built = build(config, quiet=True, log=False)
    trainer = built.trainer
    best_valid_score, best_valid_result = trainer.fit(built.train_data, built.valid_data, verbose=False, saved=saved)
    test_result = trainer.evaluate(built.test_data, load_best_model=saved)
    return {
        "model": config["model"],
        "best_valid_score": best_valid_score,
        "valid_score_bigger": config["valid_metric_bigger"],
        "best_valid_result": best_valid_result,
        "test_result": test_result,
    }


def load_data_and_model(model_file, map_location=None):
    """Rebuild config, model, dataset and the three dataloaders from a checkpoint.

    ``map_location`` (e.g. ``"cpu"``) overrides the device the checkpoint was trained on; by default the saved
    device is used when it exists here and the CPU otherwise, so GPU checkpoints load on CPU-only machines.
    """
    import torch

    if map_location is None:
        map_location = "cpu" if not torch.cuda.is_available() else None
    checkpoint = torch_load(model_file, map_location=map_location)
    config = checkpoint["config"]
    ensure_numpy_aliases()  # an unpickled Config never ran the __init__ that sets them
    if map_location is not None:
        config["device"] = torch.device(map_location)
    if not config["single_spec"] and not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        # a checkpoint of a distributed run, loaded by one process: build whole (not sharded) dataloaders
        config["single_spec"] = True
        config["local_rank"] = 0
        if config["device"].type == "cuda":
            config["device"] = torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    built = build(config)
    model = built.model
    model.load_state_dict(checkpoint["state_dict"])
    model.load_other_parameter(checkpoint.get("other_parameter"))
    return config, model, built.dataset, built.train_data, built.valid_data, built.test_data
