"""Distributed data-parallel training on CPU (gloo, nproc=2): it runs, for our models and stock ones, and its
metrics are exactly those of a single process scoring the same checkpoint (gathered rows, not averaged AUCs)."""
import glob

import pytest
import torch

from recbole_llm4msr.distributed import find_free_port
from recbole_llm4msr.quick_start import load_data_and_model
from recbole_llm4msr.registry import get_trainer
from recbole_llm4msr.results import nested_result
from tests.cli_helpers import read_json, run_cli, write_yaml
from tests.conftest import TINY


def _ddp_run(model, data_dir, workdir, **extra):
    settings = dict(TINY, data_path=data_dir, epochs=2, show_progress=False, checkpoint_dir="saved",
                    results_file=str(workdir / "results.json"), metric_decimal_place=8, train_batch_size=2048,
                    **extra)
    cfg = write_yaml(workdir / "run.yaml", settings)
    proc = run_cli("recbole_llm4msr.cli", f"--model={model}", "--dataset=ml-100k-msr", f"--config_files={cfg}",
                   "--nproc=2", f"--port={find_free_port()}", cwd=workdir)
    return proc, read_json(workdir / "results.json")


@pytest.mark.parametrize("model", ["DeepFM", "MMoE_LLM4MSR"])
def test_ddp_on_cpu_equals_one_process_scoring_the_same_checkpoint(model, data_dir, store, workdir):
    proc, results = _ddp_run(model, data_dir, workdir, knowledge_store=store)
    assert results["distributed"]["world_size"] == 2 and results["distributed"]["backend"] == "gloo"
    # one checkpoint name for both ranks (RecBole names it from each rank's clock) and its .last twin
    best = [p for p in glob.glob(str(workdir / "saved" / "*.pth")) if not p.endswith(".last.pth")]
    assert len(best) == 1, best
    assert glob.glob(str(workdir / "saved" / "*.last.pth"))

    config, net, dataset, train, valid, test = load_data_and_model(best[0])
    assert config["world_size"] == 2 and config["single_spec"] is True  # a DDP checkpoint, scored by one process
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, net)
    single = trainer.evaluate(test, load_best_model=False)
    counts = {s: v["n"] for s, v in results["test"]["scenarios"].items()}
    expected = nested_result(single, dataset.scenario_names, counts)
    assert results["test"]["n"] == len(test._dataset)  # every row once: no padding rows, none lost
    for name, m in results["test"]["scenarios"].items():
        assert m["auc"] == pytest.approx(expected["scenarios"][name]["auc"], abs=1e-7), name
        assert m["logloss"] == pytest.approx(expected["scenarios"][name]["logloss"], abs=1e-6), name
    assert results["test"]["auc"] == pytest.approx(expected["auc"], abs=1e-7)


def test_gathered_rows_follow_the_dataset_order():
    """The interleaving of DistributedSampler shards, checked against the sampler itself (odd length: padding)."""
    from torch.utils.data.distributed import DistributedSampler

    n, world = 11, 3
    data = list(range(n))
    shards = []
    for rank in range(world):
        sampler = DistributedSampler(data, num_replicas=world, rank=rank, shuffle=False)
        shards.append(torch.tensor(list(iter(sampler))))
    stacked = torch.stack(shards, dim=1).reshape(-1)[:n]  # what gather_rows does after all_gather
    assert stacked.tolist() == data
    from recbole_llm4msr.distributed import real_row_mask

    class Loader:
        pass

    real = []
    for rank in range(world):
        loader = Loader()
        loader.sampler = DistributedSampler(data, num_replicas=world, rank=rank, shuffle=False)
        real.append(real_row_mask(loader))
    assert int(torch.stack(real).sum()) == n  # padding rows are flagged, each real row exactly once


def test_nccl_without_gpus_is_a_clear_error():
    from recbole_llm4msr.distributed import init_device

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: NCCL is available")
    with pytest.raises(ValueError, match="nccl needs CUDA"):
        init_device({"local_rank": 0, "nproc": 2, "world_size": 2, "ddp_backend": "nccl"})
    with pytest.raises(ValueError, match="ddp_backend"):
        init_device({"local_rank": 0, "nproc": 2, "world_size": 2, "ddp_backend": "mpi"})


def test_two_machines_are_two_commands_with_world_size_and_group_offset(data_dir, store, workdir):
    """Two 'machines' (one process each) joined by world_size / ip / port / group_offset, as on a cluster."""
    import subprocess

    from tests.cli_helpers import cli_command, env

    cfg = write_yaml(workdir / "run.yaml", dict(TINY, data_path=data_dir, epochs=1, show_progress=False,
                                                checkpoint_dir="saved", metric_decimal_place=8))
    port = find_free_port()
    procs = []
    for machine in range(2):
        (workdir / f"m{machine}").mkdir()
        procs.append(subprocess.Popen(
            cli_command("recbole_llm4msr.cli", "--model=MMoE", "--dataset=ml-100k-msr", f"--config_files={cfg}",
                        "--nproc=1", "--world_size=2", "--ip=localhost", f"--port={port}",
                        f"--group_offset={machine}", f"--results_file={workdir / f'm{machine}.json'}"),
            cwd=workdir / f"m{machine}", env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-3000:] for o in outs]
    a, b = read_json(workdir / "m0.json"), read_json(workdir / "m1.json")
    assert a["distributed"]["world_size"] == 2
    assert a["test"] == b["test"]  # both machines report the metrics of all rows


def test_too_few_gpus_stop_the_launch_before_any_work_or_process(monkeypatch, data_dir, workdir):
    """One GPU visible and nproc=2 under NCCL (auto): the launcher says so at once, naming gpu_id, before the dataset
    or the knowledge store is prepared and before mp.spawn (on the H200 lease the ranks used to fail one by one with
    a traceback each; benchmarks/results/gpu-h200-6/ddp-two-on-one.log)."""
    import torch.multiprocessing as mp

    from recbole_llm4msr import quick_start
    from recbole_llm4msr.distributed import resolve_backend

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(quick_start, "prepare", lambda config: pytest.fail("prepared before the GPU check"))
    monkeypatch.setattr(mp, "spawn", lambda *a, **k: pytest.fail("spawned before the GPU check"))
    with pytest.raises(ValueError, match=r"nproc=2 processes need 2 GPUs but 1 are visible .*set gpu_id"):
        quick_start.run("MMoE", "ml-100k-msr", config_dict=dict(TINY, data_path=data_dir), nproc=2)
    # the same rule, read by each rank: gloo needs no GPU, one rank fits one GPU
    assert resolve_backend({"nproc": 2, "ddp_backend": "gloo"}) == ("gloo", False)
    assert resolve_backend({"nproc": 1}) == ("nccl", True)
    with pytest.raises(ValueError, match="nproc=3 processes need 3 GPUs"):
        resolve_backend({"nproc": 3, "ddp_backend": "nccl"})
