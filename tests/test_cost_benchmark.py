"""benchmarks/enhancements.py's table names the device it ran on, keeps what finished, and its timing helpers work
without a GPU; benchmarks/gpu_ctr.sh refuses a missing output folder."""
import csv
import subprocess
from argparse import Namespace
from pathlib import Path

import torch

from benchmarks.enhancements import device_name, inference_ms, synchronize, write_results

ROOT = Path(__file__).resolve().parents[1]


def rows(device):
    return [{"backbone": "STAR", "train_ratio": 1.5, "infer_ratio": 1.2, "device": device}]


def test_the_table_names_its_device_and_the_csv_keeps_it(tmp_path, capsys):
    args = Namespace(out=str(tmp_path), dataset="toy", tag="gpu", epochs=2, repeat=3, processes=1,
                     steady_allocator=False)
    write_results(rows("1 NVIDIA H200 GPU, 16 CPU cores"), args, "/x/store-abc", [], show=False)
    assert capsys.readouterr().out == ""  # a partial write (after each backbone) prints nothing
    md = (tmp_path / "enhancements-toy-gpu.md").read_text()
    assert md.startswith("Cost of LLM4MSR on toy (1 NVIDIA H200 GPU, 16 CPU cores; training")
    assert "| backbone | train_ratio | infer_ratio |" in md and "| STAR | 1.5 | 1.2 |" in md  # device: header only
    with open(tmp_path / "enhancements-toy-gpu.csv") as f:
        assert next(csv.DictReader(f))["device"] == "1 NVIDIA H200 GPU, 16 CPU cores"
    write_results(rows("2 CPU cores"), args, "/x/store-abc", [])
    assert "Cost of LLM4MSR on toy (2 CPU cores;" in capsys.readouterr().out
    png = tmp_path / "enhancements-toy-gpu.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


def test_plot_draws_a_csv_with_variants_and_ranges(tmp_path):
    """--plot: an existing CSV (over processes, with a variant) as a PNG beside it, nothing else written."""
    from benchmarks.enhancements import main

    path = tmp_path / "old.csv"
    path.write_text("backbone,train_ratio,train_ratio_range,infer_ratio,infer_ratio_range,train_ratio_narrow8,"
                    "train_ratio_narrow8_range,infer_ratio_narrow8,infer_ratio_narrow8_range\n"
                    "STAR,1.59,1.45-1.69,1.93,1.79-2.04,1.19,1.11-1.23,1.29,1.29-1.34\n"
                    "MMoE,1.05,1.03-1.36,1.27,1.27-1.27,1.01,0.97-1.13,1.08,1.06-1.09\n")
    main(["--plot", str(path)])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.csv", "old.png"]
    assert (tmp_path / "old.png").stat().st_size > 5000


def test_timing_helpers_on_a_cpu():
    synchronize("cpu")  # nothing to wait for
    assert device_name("cpu").endswith("CPU cores")

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(3, 1)

        def predict(self, batch):
            return self.lin(batch)

    batches = [torch.randn(50, 3), torch.randn(30, 3)]
    ms, faults = inference_ms([Model(), Model()], batches, repeat=2)
    assert len(ms) == 2 and all(m > 0 for m in ms) and len(faults) == 2


def test_gpu_ctr_needs_an_output_folder():
    r = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_ctr.sh")], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "usage: gpu_ctr.sh OUT_DIR [SECONDS] [LANES: a comma list of ddp,cost]" in r.stderr
