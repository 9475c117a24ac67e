"""Each compatibility measure of recbole_llm4msr.compat, with a test that fails without it."""
import importlib.metadata
import pickle
import subprocess
import sys

import pytest
import torch
from packaging.version import Version
from recbole.config import Config

from recbole_llm4msr.compat import torch_load


def test_checkpoint_with_config_needs_the_shim(tmp_path, data_dir):
    """RecBole checkpoints pickle a Config: torch>=2.6's default weights-only load refuses them, ours loads them."""
    config = Config(model="DeepFM", dataset="ml-100k-msr", config_dict={"data_path": data_dir})
    path = tmp_path / "ckpt.pth"
    torch.save({"config": config, "state_dict": {"w": torch.ones(2)}}, path, pickle_protocol=4)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)  # what RecBole 1.2.1 does
    loaded = torch_load(path, map_location="cpu")
    assert loaded["config"]["model"] == "DeepFM"
    assert torch.equal(loaded["state_dict"]["w"], torch.ones(2))


@pytest.mark.parametrize("package,bound", [("numpy", "2"), ("pandas", "3"), ("setuptools", "81")])
def test_pinned_below_breaking_majors(package, bound):
    """numpy 2 (ray's np.bool8), pandas 3 (recbole's Dataset) and setuptools 81 (pkg_resources) break RecBole."""
    assert Version(importlib.metadata.version(package)) < Version(bound)


def test_unknown_model_does_not_import_lightgbm():
    code = (
        "import sys\n"
        "from recbole_llm4msr.registry import get_model\n"
        "try:\n"
        "    get_model('NoSuchModel')\n"
        "except ValueError as e:\n"
        "    print('MSG', e)\n"
        "print('LGB', 'lightgbm' in sys.modules, 'xgboost' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "Unknown model 'NoSuchModel'" in out and "DeepFM" in out
    assert "LGB False False" in out


def test_checkpoint_loads_in_a_fresh_process(data_dir, workdir):
    """load_data_and_model in a new process: RecBole's models need np.long, which only Config.__init__ sets."""
    from recbole_llm4msr.quick_start import run_recbole
    from tests.conftest import quick_config

    run_recbole(model="DeepFM", dataset="ml-100k-msr", config_dict=quick_config(data_dir))
    ckpt = next(p for p in workdir.joinpath("saved").glob("DeepFM-*.pth") if not p.name.endswith(".last.pth"))
    code = (
        "import numpy as np\n"
        "assert 'long' not in np.__dict__\n"
        "from recbole_llm4msr.quick_start import load_data_and_model\n"
        f"config, model, *_ = load_data_and_model({str(ckpt)!r})\n"
        "print('OK', type(model).__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=workdir)
    assert "OK DeepFM" in out.stdout, out.stderr[-2000:]


def test_resolving_models_leaves_torch_anomaly_mode_as_it_was():
    """RecBole's sequential_recommender/sine.py turns on autograd anomaly detection when imported (every later
    backward pass ~10x slower); resolving any model through our registry must not, and must not turn off a mode the
    caller chose. Fresh processes: the import side effect runs once per process."""
    def fresh(code):
        out = subprocess.run([sys.executable, "-c", "import torch\n" + code], capture_output=True, text=True,
                             timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
        return out.stdout.split()

    # the premise: RecBole's own import does it
    assert fresh("import recbole.model.sequential_recommender\nprint(torch.is_anomaly_enabled())") == ["True"]
    resolve = ("from recbole_llm4msr.registry import get_model, recbole_model_names\n"
               "for name in ('MMoE_LLM4MSR', 'SASRec_TSLRec', 'GRU4Rec_TSLRec', 'SASRec', 'SINE', 'DeepFM', "
               "'LightGCN'):\n"
               "    get_model(name)\n"
               "    print(torch.is_anomaly_enabled())\n"
               "recbole_model_names()\n"
               "print(torch.is_anomaly_enabled(), torch.is_anomaly_check_nan_enabled())\n")
    assert fresh(resolve) == ["False"] * 7 + ["False", "True"]
    chosen = fresh("torch.autograd.set_detect_anomaly(True, check_nan=False)\n" + resolve)
    assert chosen == ["True"] * 7 + ["True", "False"]


def test_only_recboles_own_deprecations_are_quiet_and_pandas_still_does_what_recbole_asks():
    """RecBole's trainer builds torch.cuda.amp.GradScaler every epoch (a FutureWarning per epoch on torch >= 2.4), and
    its Dataset._fill_nan fills with a chained fillna(inplace=True) (a FutureWarning per field on pandas >= 2.2): quiet
    inside the context, and only those; the pinned pandas still fills in place."""
    import warnings

    import numpy as np
    import pandas as pd

    from recbole_llm4msr.compat import recbole_deprecations_quiet

    frame = pd.DataFrame({"a": [1.0, np.nan, 3.0]})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with recbole_deprecations_quiet():
            torch.cuda.amp.GradScaler(enabled=False)
            frame["a"].fillna(value=frame["a"].mean(), inplace=True)  # as RecBole's _fill_nan does
            lengths = pd.Series([[1, 2], [3]]).agg(len)  # as RecBole's _remap does for token_seq fields
            warnings.warn("something else is deprecated", FutureWarning)
        torch.cuda.amp.GradScaler(enabled=False)  # outside: as before
        frame["a"].fillna(value=0.0, inplace=True)
        pd.Series([[1]]).agg(len)
    messages = [str(w.message) for w in caught]
    assert messages[0] == "something else is deprecated"
    assert len(messages) == 4 and "torch.cuda.amp.GradScaler" in messages[1] and "chained assignment" in messages[2]
    assert "Series.agg" in messages[3]
    assert frame["a"].tolist() == [1.0, 2.0, 3.0]  # filled in place (pandas < 3, the pin)
    assert lengths.tolist() == [2, 1]  # still each item's length (pandas < 3)


def test_creating_a_dataset_shows_none_of_recboles_fill_warnings(data_dir):
    import warnings

    from recbole_llm4msr.config import MultiScenarioConfig
    from recbole_llm4msr.registry import create_dataset
    from recbole_llm4msr.settings import hidden_command_line

    with hidden_command_line():
        config = MultiScenarioConfig(model="MMoE", dataset="ml-100k-msr", config_dict={"data_path": data_dir})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dataset = create_dataset(config)
    assert dataset.inter_num > 0
    assert not [w for w in caught if "chained assignment" in str(w.message) or "Series.agg" in str(w.message)]
