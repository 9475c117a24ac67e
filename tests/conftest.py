from pathlib import Path

import pytest

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
