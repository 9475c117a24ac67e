import json
import os

import pytest
from recbole.data import data_preparation

from dataset_converters import csv as csv_conv
from recbole_llm4msr.config import MultiScenarioConfig
from recbole_llm4msr.data import MultiScenarioDataset, ScenarioDataError
from recbole_llm4msr.registry import create_dataset


def make_config(data_dir, dataset="ml-100k-msr", **extra):
    return MultiScenarioConfig(model="DeepFM", dataset=dataset,
                               config_dict={"data_path": data_dir, "state": "WARNING", **extra})


def test_config_layers_our_properties(data_dir):
    config = make_config(data_dir)
    assert config["SCENARIO_FIELD"] == "scenario"
    assert config["benchmark_filename"] == ["train", "valid", "test"]
    assert config["metrics"] == ["AUC", "LogLoss"] and config["valid_metric"] == "AUC"
    assert config["eval_args"]["mode"] == {"valid": "labeled", "test": "labeled"}
    # from the converter-written YAML next to the data, and from properties/dataset/
    assert config["load_col"]["user"] == ["user_id", "age", "gender", "occupation"]
    assert set(config["scenario_descriptions"]) == {"young", "middle", "senior"}
    # a user's own settings win
    assert make_config(data_dir, valid_metric="logloss")["valid_metric_bigger"] is False


def test_dataset_exposes_scenarios_and_statistics(data_dir):
    config = make_config(data_dir)
    dataset = create_dataset(config)
    assert isinstance(dataset, MultiScenarioDataset)
    assert dataset.scenario_num == 3
    assert sorted(dataset.scenario_names) == ["middle", "senior", "young"]
    assert dataset.scenario_names[dataset.scenario_id("young") - 1] == "young"
    stats = dataset.scenario_statistics()
    converter = json.load(open(os.path.join(data_dir, "ml-100k-msr", "ml-100k-msr.stats.json")))
    for name, s in stats.items():
        c = converter["scenarios"][name]
        assert (s["interactions"], s["users"], s["items"], s["positives"]) == (
            c["interactions"], c["users"], c["items"], c["positives"])
        assert s["sparsity"] == pytest.approx(c["sparsity"]) and s["positive_ratio"] == pytest.approx(c["positive_ratio"])
    train, valid, test = data_preparation(config, dataset)
    train_stats = train._dataset.scenario_statistics()
    assert sum(s["interactions"] for s in train_stats.values()) == converter["splits"]["train"]["interactions"]
    assert train_stats["young"]["interactions"] == converter["splits"]["train"]["scenarios"]["young"]


def _tiny_dataset(tmp_path, scenarios=("a", "b")):
    rows = [f"{k % 9},{k % 13},{k % 2},{scenarios[k % len(scenarios)]}" for k in range(120)]
    src = tmp_path / "tiny.csv"
    src.write_text("u,i,y,s\n" + "\n".join(rows) + "\n")
    data = tmp_path / "data"
    csv_conv.convert(str(src), str(data), "tiny", "u", "i", "y", "s")
    return str(data), data / "tiny"


def _rewrite(path, fn):
    path.write_text(fn(path.read_text()))


def test_missing_scenario_field_names_file_and_field(tmp_path):
    data, _ = _tiny_dataset(tmp_path)
    with pytest.raises(ScenarioDataError) as err:
        create_dataset(make_config(data, "tiny", SCENARIO_FIELD="domain"))
    msg = str(err.value)
    assert "'domain'" in msg and "tiny.train.inter" in msg and "SCENARIO_FIELD" in msg


def test_float_scenario_field_is_refused(tmp_path):
    data, folder = _tiny_dataset(tmp_path, scenarios=("0", "1"))
    for part in ("train", "valid", "test"):
        _rewrite(folder / f"tiny.{part}.inter", lambda t: t.replace("scenario:token", "scenario:float", 1))
    with pytest.raises(ScenarioDataError) as err:
        create_dataset(make_config(data, "tiny"))
    assert "'scenario'" in str(err.value) and "'float'" in str(err.value) and "scenario:token" in str(err.value)
    assert "tiny.train.inter" in str(err.value)


def test_scenario_absent_from_training_split(tmp_path):
    data, folder = _tiny_dataset(tmp_path, scenarios=("a", "b", "c"))
    _rewrite(folder / "tiny.train.inter", lambda t: "\n".join(l for l in t.split("\n") if not l.endswith("\tc")))
    config = make_config(data, "tiny")
    with pytest.raises(ScenarioDataError) as err:
        data_preparation(config, create_dataset(config))
    assert "['c']" in str(err.value) and "training split" in str(err.value) and "tiny.train.inter" in str(err.value)


def test_unknown_dataset_fails_without_download(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist.*dataset_converters"):
        create_dataset(make_config(str(tmp_path), "no-such-data"))



@pytest.mark.parametrize("name,archive", [("kuaisar", "KuaiSAR_v2.zip"), ("kuaisar-small", "KuaiSAR.zip")])
def test_downloaded_dataset_names_the_command(tmp_path, name, archive):
    # a dataset the user must download is not silently "missing": the error is the exact converter command
    with pytest.raises(FileNotFoundError) as err:
        create_dataset(make_config(str(tmp_path), name))
    text = str(err.value)
    assert f"download {archive}" in text
    assert f"python -m dataset_converters kuaisar {archive} --out {tmp_path} --name {name}" in text
    assert not (tmp_path / name).exists()

def test_builtin_dataset_is_built_on_first_use(tmp_path):
    config = make_config(str(tmp_path))  # empty data_path: ml-100k-msr is converted into it
    assert os.path.isfile(tmp_path / "ml-100k-msr" / "ml-100k-msr.stats.json")
    assert config["load_col"]["item"] == ["item_id", "release_year", "class"]
