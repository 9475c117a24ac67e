"""Recovery: a killed training run resumes (--resume) to the result of an uninterrupted one; a killed knowledge
extraction or conversion continues; GPU checkpoints load on CPU; broken checkpoints are clear errors.

Every kill here is a SIGKILL of a real subprocess."""
import glob
import io
import json
import os
import signal
import subprocess
import time
import zipfile

import numpy as np
import pytest
import torch

from recbole_llm4msr.quick_start import load_data_and_model
from recbole_llm4msr.registry import get_trainer
from tests.cli_helpers import cli_command, env, read_json, run_cli, write_yaml
from tests.conftest import TINY


def _settings(data_dir, workdir, **extra):
    settings = dict(TINY, data_path=data_dir, epochs=5, stopping_step=100, show_progress=False, checkpoint_dir="saved",
                    results_file=str(workdir / "results.json"), metric_decimal_place=8, train_batch_size=1024)
    settings.update(extra)
    return settings


def _kill_when(proc, ready, timeout=600):
    """SIGKILL ``proc`` as soon as ``ready()`` is true; fail if it finished first."""
    start = time.time()
    while not ready():
        assert proc.poll() is None, f"the run finished before it could be killed:\n{proc.stderr.read()[-3000:]}"
        assert time.time() - start < timeout, "timed out waiting for the kill point"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_killed_training_resumes_to_the_uninterrupted_result(data_dir, workdir):
    whole, killed = workdir / "whole", workdir / "killed"
    whole.mkdir()
    killed.mkdir()
    args = ["--model=MMoE", "--dataset=ml-100k-msr"]
    run_cli("recbole_llm4msr.cli", *args, f"--config_files={write_yaml(whole / 'c.yaml', _settings(data_dir, whole))}",
            cwd=whole)
    reference = read_json(whole / "results.json")

    cfg = write_yaml(killed / "c.yaml", _settings(data_dir, killed))
    proc = subprocess.Popen(cli_command("recbole_llm4msr.cli", *args, f"--config_files={cfg}"), cwd=killed,
                            env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seen = {}

    def two_epochs_saved():  # the .last checkpoint has been (atomically) rewritten once: epoch >= 1 is on disk
        files = glob.glob(str(killed / "saved" / "*.last.pth"))
        if not files:
            return False
        mtime = os.stat(files[0]).st_mtime_ns
        seen.setdefault("first", mtime)
        return mtime != seen["first"]

    _kill_when(proc, two_epochs_saved)
    last = glob.glob(str(killed / "saved" / "*.last.pth"))[0]
    epoch = torch.load(last, map_location="cpu", weights_only=False)["epoch"]
    assert 1 <= epoch < 4, f"killed at epoch {epoch}: not mid-run"
    assert not (killed / "results.json").exists()

    run_cli("recbole_llm4msr.cli", *args, f"--config_files={cfg}", f"--resume={last}", cwd=killed)
    resumed = read_json(killed / "results.json")
    assert resumed["timing"]["epochs_trained"] == 4 - epoch  # only the epochs that were left
    assert resumed["best_valid"] == reference["best_valid"]
    assert resumed["test"] == reference["test"]


def test_resuming_a_finished_run_trains_nothing(data_dir, workdir):
    cfg = write_yaml(workdir / "c.yaml", _settings(data_dir, workdir, epochs=2))
    run_cli("recbole_llm4msr.cli", "--model=MMoE", "--dataset=ml-100k-msr", f"--config_files={cfg}", cwd=workdir)
    first = read_json(workdir / "results.json")
    last = glob.glob(str(workdir / "saved" / "*.last.pth"))[0]
    run_cli("recbole_llm4msr.cli", "--model=MMoE", "--dataset=ml-100k-msr", f"--config_files={cfg}",
            f"--resume={last}", cwd=workdir)
    again = read_json(workdir / "results.json")
    assert again["test"] == first["test"] and again["timing"]["epochs_trained"] is None


def _as_gpu_checkpoint(src, dst):
    """Rewrite a CPU checkpoint so that every tensor says it lives on cuda:0 (what a GPU run writes)."""
    obj = torch.load(src, map_location="cpu", weights_only=False)
    buf = io.BytesIO()
    torch.save(obj, buf, pickle_protocol=2)  # protocol 2: no pickle frames, so strings may change length
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename.endswith("data.pkl"):
                assert b"X\x03\x00\x00\x00cpu" in data
                data = data.replace(b"X\x03\x00\x00\x00cpu", b"X\x06\x00\x00\x00cuda:0")
            zout.writestr(item, data)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA to prove the CPU fallback")
def test_gpu_checkpoint_loads_and_scores_on_cpu(data_dir, workdir):
    cfg = write_yaml(workdir / "c.yaml", _settings(data_dir, workdir, epochs=1))
    run_cli("recbole_llm4msr.cli", "--model=MMoE", "--dataset=ml-100k-msr", f"--config_files={cfg}", cwd=workdir)
    best = [p for p in glob.glob(str(workdir / "saved" / "*.pth")) if not p.endswith(".last.pth")][0]
    gpu = str(workdir / "gpu.pth")
    _as_gpu_checkpoint(best, gpu)
    with pytest.raises(RuntimeError, match="CUDA"):
        torch.load(gpu, weights_only=False)  # the fake is a real GPU checkpoint: plain loading fails here
    config, model, dataset, train, valid, test = load_data_and_model(gpu)
    assert config["device"].type == "cpu"
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    scored = trainer.evaluate(test, load_best_model=False)
    assert scored["auc"] == pytest.approx(read_json(workdir / "results.json")["test"]["auc"], abs=1e-7)


def test_broken_resume_files_are_clear_errors(data_dir, workdir):
    cfg = write_yaml(workdir / "c.yaml", _settings(data_dir, workdir, epochs=1))
    base = ["--model=MMoE", "--dataset=ml-100k-msr", f"--config_files={cfg}"]
    run_cli("recbole_llm4msr.cli", *base, cwd=workdir)
    last = glob.glob(str(workdir / "saved" / "*.last.pth"))[0]
    torn = workdir / "torn.pth"
    torn.write_bytes(open(last, "rb").read()[:5000])
    cases = {
        str(workdir / "nope.pth"): "does not exist",
        str(torn): "not a readable RecBole checkpoint",
    }
    for path, message in cases.items():
        proc = run_cli("recbole_llm4msr.cli", *base, f"--resume={path}", cwd=workdir, check=False)
        assert proc.returncode == 1 and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    other = run_cli("recbole_llm4msr.cli", "--model=OMoE", "--dataset=ml-100k-msr", f"--config_files={cfg}",
                    f"--resume={last}", cwd=workdir, check=False)
    assert other.returncode == 1 and "trained as MMoE" in other.stderr and "Traceback" not in other.stderr


def test_killed_knowledge_extraction_continues(data_dir, tmp_path):
    from recbole_llm4msr.knowledge.store import KnowledgeStore
    from tests.knowledge_helpers import tiny_model_dir

    model_dir = tiny_model_dir(tmp_path)
    common = ["--dataset=ml-100k-msr", f"--data_path={data_dir}", f"--llm={model_dir}", "--limit_users=300",
              "--user_vector=prompt",  # chunks of users (items mode: tests/test_knowledge.py resumes by item)
              "--chunk_size=20", "--batch_size=4", "--max_prompt_tokens=2000"]
    ref = run_cli("recbole_llm4msr.knowledge.cli", *common, f"--cache_dir={tmp_path / 'ref'}", cwd=tmp_path)
    reference = KnowledgeStore(json.loads(ref.stdout.strip().splitlines()[-1])["cache"])

    cache = tmp_path / "run"
    proc = subprocess.Popen(cli_command("recbole_llm4msr.knowledge.cli", *common, f"--cache_dir={cache}"),
                            cwd=tmp_path, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _kill_when(proc, lambda: len(glob.glob(str(cache / "**" / "user-*.npz"), recursive=True)) >= 2)
    done_before = len(glob.glob(str(cache / "**" / "user-*.npz"), recursive=True))
    out = run_cli("recbole_llm4msr.knowledge.cli", *common, f"--cache_dir={cache}", cwd=tmp_path)
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["users"] == 300
    resumed = KnowledgeStore(summary["cache"])
    assert resumed.ids("user") == reference.ids("user")
    np.testing.assert_allclose(np.asarray(resumed.vectors("user"), np.float32),
                               np.asarray(reference.vectors("user"), np.float32), atol=1e-3)
    assert done_before >= 2


def test_killed_conversion_continues_to_identical_files(tmp_path):
    from benchmarks.kuaisar_scale import generate

    raw = tmp_path / "raw"
    generate(str(raw), scale=0.03, seed=0)  # 438k recommendation + 152k search rows, KuaiSAR's columns
    args = ["kuaisar", str(raw), "--name=k"]
    run_cli("dataset_converters", *args, f"--out={tmp_path / 'ref'}", cwd=tmp_path)

    out = tmp_path / "out"
    proc = subprocess.Popen(cli_command("dataset_converters", *args, f"--out={out}"), cwd=tmp_path, env=env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    # kill while it writes its files (into a hidden partial folder that is renamed when complete)
    _kill_when(proc, lambda: any(os.listdir(p) for p in glob.glob(str(out / ".k.partial-*"))))
    assert not (out / "k").exists()  # killed before it finished: nothing that looks like a dataset
    run_cli("dataset_converters", *args, f"--out={out}", cwd=tmp_path)
    names = sorted(os.listdir(tmp_path / "ref" / "k"))
    assert names == sorted(os.listdir(out / "k"))
    for name in names:
        if not name.endswith("stats.json"):  # holds the creation time
            assert (out / "k" / name).read_bytes() == (tmp_path / "ref" / "k" / name).read_bytes(), name
