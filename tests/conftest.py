import os
from pathlib import Path

import pytest

if os.environ.get("PYTEST_XDIST_WORKER"):
    # pytest -n N (pytest.ini: one worker per core): each worker, and every process it starts (torchrun, the CLIs),
    # runs one thread, so N workers use the N cores instead of each spreading over all of them; set before the test
    # modules import torch, which reads it once
    os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    """A data folder holding ml-100k-msr, converted once per test session."""
    from dataset_converters import ml100k

    path = tmp_path_factory.mktemp("data")
    ml100k.convert(str(path))
    return str(path)


@pytest.fixture()
def workdir(tmp_path, monkeypatch):
    """RecBole writes log/, log_tensorboard/ and saved/ into the working directory: run each test in its own."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def shared_file(name):
    path = SHARED_DATA / name
    if not path.is_file():
        pytest.skip(f"{path} is absent (the real samples live in ../shared/data/ next to the checkout)")
    return str(path)


def quick_config(data_dir, **extra):
    """Small, fast settings for one-epoch end-to-end runs."""
    config = {
        "data_path": data_dir,
        "epochs": 1,
        "train_batch_size": 2048,
        "show_progress": False,
        "state": "WARNING",
        "checkpoint_dir": "saved",
    }
    config.update(extra)
    return config


@pytest.fixture(scope="session")
def store(data_dir, tmp_path_factory):
    """A knowledge store for ml-100k-msr from a tiny random LLM (fast); 600 of the 943 users get a vector."""
    from recbole_llm4msr.knowledge.extract import build_knowledge
    from tests.knowledge_helpers import make_spec, tiny_llm

    cache = tmp_path_factory.mktemp("knowledge")
    spec = make_spec(data_dir, cache, limit_users=600, chunk_size=300, batch_size=64, max_prompt_tokens=4000)
    return build_knowledge(spec, llm_model=tiny_llm(), show_progress=False)["cache"]


# small sizes for every backbone and enhancement (fast end-to-end runs)
TINY = {"embedding_size": 4, "expert_mlp_sizes": [16], "bottom_mlp_sizes": [16], "tower_mlp_sizes": [8],
        "star_mlp_sizes": [16], "aux_mlp_sizes": [8], "expert_num": 2, "meta_bottom_hidden_sizes": [8],
        "meta_parallel_hidden_sizes": [8], "meta_rank": 4, "ep_hidden_size": 16, "train_batch_size": 4096}
