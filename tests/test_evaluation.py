import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from sklearn.metrics import log_loss, roc_auc_score

from recbole_llm4msr.quick_start import load_data_and_model, run_recbole
from recbole_llm4msr.evaluation import scenario_metrics
from tests.conftest import quick_config

SCENARIOS = {"young", "middle", "senior"}


def test_scenario_metrics_equal_sklearn():
    rng = np.random.default_rng(0)
    n = 3000
    scen = rng.integers(1, 4, n)
    labels = (rng.random(n) < 0.3 + 0.1 * scen).astype(float)
    scores = np.clip(0.5 * labels + 0.6 * rng.random(n) - 0.05, 0.001, 0.999)
    scores[:50] = 0.5  # ties
    out = scenario_metrics(scores, labels, scen, ["a", "b", "c"])
    for sid, name in enumerate(["a", "b", "c"], start=1):
        m = scen == sid
        assert out[name]["n"] == int(m.sum())
        assert out[name]["auc"] == pytest.approx(roc_auc_score(labels[m], scores[m]), abs=1e-12)
        assert out[name]["logloss"] == pytest.approx(log_loss(labels[m], scores[m]), abs=1e-12)


def test_one_class_scenario_has_no_auc_and_empty_scenario_is_left_out():
    out = scenario_metrics([0.2, 0.7, 0.4, 0.9], [1, 1, 0, 1], [1, 1, 2, 2], ["only_pos", "mixed", "empty"])
    assert out["only_pos"]["auc"] is None and out["only_pos"]["logloss"] == pytest.approx(log_loss([1, 1], [0.2, 0.7], labels=[0, 1]))
    assert out["mixed"]["auc"] == 1.0 and "empty" not in out


@pytest.fixture(scope="module")
def deepfm_run(data_dir, tmp_path_factory):
    cwd = os.getcwd()
    work = tmp_path_factory.mktemp("deepfm")
    os.chdir(work)
    try:
        result = run_recbole(model="DeepFM", dataset="ml-100k-msr", config_dict=quick_config(data_dir, state="INFO"))
    finally:
        os.chdir(cwd)
    return work, result


def test_deepfm_one_epoch_per_scenario_auc(deepfm_run):
    work, result = deepfm_run
    for key in ("best_valid_result", "test_result"):
        for scen in SCENARIOS:
            assert result[key][f"auc_{scen}"] > 0.5, (key, scen, result[key])
            assert 0 < result[key][f"logloss_{scen}"] < 1.0


def test_results_json_shape(deepfm_run):
    work, result = deepfm_run
    path = result["results_file"]
    assert os.path.isfile(path) and path.endswith(".results.json")
    assert os.path.dirname(path) == str(work / "log" / "DeepFM")  # next to the run's log
    log = path.replace(".results.json", ".log")
    assert os.path.isfile(log) and "test per scenario" in open(log).read()
    data = json.load(open(path))
    assert data["model"] == "DeepFM" and data["dataset"] == "ml-100k-msr"
    assert data["config"]["SCENARIO_FIELD"] == "scenario" and data["config"]["epochs"] == 1
    for part in ("best_valid", "test"):
        block = data[part]
        assert set(block) >= {"auc", "logloss", "scenarios"}
        assert set(block["scenarios"]) == SCENARIOS
        assert sum(s["n"] for s in block["scenarios"].values()) == 9999
        for s in block["scenarios"].values():
            assert set(s) == {"auc", "logloss", "n"}
    assert data["test"]["auc"] == result["test_result"]["auc"]
    assert data["test"]["scenarios"]["young"]["auc"] == result["test_result"]["auc_young"]


def test_reported_per_scenario_auc_equals_sklearn_on_the_model_predictions(deepfm_run):
    """Reload the best checkpoint, score the test split ourselves, and compare with the reported numbers."""
    work, result = deepfm_run
    saved = [f for f in os.listdir(work / "saved") if f.endswith(".pth") and not f.endswith(".last.pth")]
    assert len(saved) == 1
    cwd = os.getcwd()
    os.chdir(work)
    try:
        config, model, dataset, _, _, test_data = load_data_and_model(str(work / "saved" / saved[0]))
    finally:
        os.chdir(cwd)
    model.eval()
    scores, labels, scen = [], [], []
    with torch.no_grad():
        for batch in test_data:
            interaction = batch[0]
            scores.append(model.predict(interaction).numpy())
            labels.append(interaction["label"].numpy())
            scen.append(interaction["scenario"].numpy())
    scores, labels, scen = map(np.concatenate, (scores, labels, scen))
    names = dataset.scenario_names
    assert roc_auc_score(labels, scores) == pytest.approx(result["test_result"]["auc"], abs=1e-4)
    for sid, name in enumerate(names, start=1):
        m = scen == sid
        assert roc_auc_score(labels[m], scores[m]) == pytest.approx(result["test_result"][f"auc_{name}"], abs=1e-4)
        assert log_loss(labels[m], scores[m]) == pytest.approx(result["test_result"][f"logloss_{name}"], abs=1e-4)


@pytest.mark.parametrize("model", ["WideDeep", "DCN", "xDeepFM", "AutoInt"])
def test_stock_context_models_get_per_scenario_metrics(model, data_dir, workdir):
    result = run_recbole(model=model, dataset="ml-100k-msr",
                         config_dict=quick_config(data_dir, embedding_size=8, mlp_hidden_size=[32, 32]), saved=False)
    for scen in SCENARIOS:
        assert result["test_result"][f"auc_{scen}"] > 0.5
    assert set(result["results"]["test"]["scenarios"]) == SCENARIOS


def test_valid_metric_may_name_a_scenario(data_dir, workdir):
    result = run_recbole(model="DeepFM", dataset="ml-100k-msr",
                         config_dict=quick_config(data_dir, epochs=2, valid_metric="logloss_young"), saved=False)
    assert result["valid_score_bigger"] is False
    assert result["best_valid_score"] == result["best_valid_result"]["logloss_young"]
    with pytest.raises(KeyError, match="auc_nobody.*auc_young"):
        run_recbole(model="DeepFM", dataset="ml-100k-msr",
                    config_dict=quick_config(data_dir, valid_metric="auc_nobody"), saved=False)


def test_console_script_with_config_files_and_cli_params(data_dir, workdir):
    a = workdir / "a.yaml"
    b = workdir / "b.yaml"
    a.write_text("embedding_size: 4\nresults_file: from_a.json\n")
    b.write_text(f"results_file: {workdir / 'out' / 'res.json'}\ntrain_batch_size: 4096\n")
    cmd = [os.path.join(os.path.dirname(sys.executable), "run_recbole"), "--model=DeepFM", "--dataset=ml-100k-msr",
           f"--config_files={a},{b}", f"--data_path={data_dir}", "--epochs=1", "--show_progress=False",
           "--learning_rate=0.005"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=workdir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.load(open(workdir / "out" / "res.json"))  # b.yaml overrides a.yaml
    assert data["config"]["embedding_size"] == 4 and data["config"]["train_batch_size"] == 4096
    assert data["config"]["learning_rate"] == 0.005
    assert set(data["test"]["scenarios"]) == SCENARIOS


def test_console_script_unknown_model_lists_names(workdir):
    cmd = [os.path.join(os.path.dirname(sys.executable), "run_recbole"), "--model=DeepFN", "--dataset=ml-100k-msr"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=workdir)
    assert proc.returncode == 1
    assert "Unknown model 'DeepFN'" in proc.stderr and "DeepFM" in proc.stderr and "Traceback" not in proc.stderr
