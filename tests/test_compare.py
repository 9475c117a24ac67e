"""llm4msr-compare: significance marker, the tiny grid's outputs, resume and crash handling."""
import csv
import os

from recbole_llm4msr.compare import Comparison, family, paired_test, significant

TINY = {"embedding_size": 4, "expert_mlp_sizes": [16], "tower_mlp_sizes": [8], "expert_num": 2,
        "train_batch_size": 4096, "meta_bottom_hidden_sizes": [8], "meta_parallel_hidden_sizes": [8]}


def test_significance_marker_on_fixed_numbers():
    assert significant([0.80, 0.82, 0.81, 0.83], [0.70, 0.71, 0.72, 0.70])
    assert not significant([0.80, 0.70, 0.75], [0.76, 0.74, 0.75])  # noisy: no marker
    assert not significant([0.70, 0.71, 0.72, 0.70], [0.80, 0.82, 0.81, 0.83])  # significantly worse: no marker
    assert not significant([0.8], [0.7])  # one seed: no test
    rel, p = paired_test([0.80, 0.82, 0.81, 0.83], [0.70, 0.71, 0.72, 0.70])
    assert round(rel, 2) == 15.19 and p < 0.01  # means 0.815 vs 0.7075
    assert family("MMoE_LLM4MSR") == ("MMoE", "llm4msr") and family("DeepFM") == ("DeepFM", "plain")


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_tiny_grid_outputs_resume_and_crash(data_dir, tmp_path, workdir):
    out = str(tmp_path / "cmp")
    comparison = Comparison("ml-100k-msr", ["DeepFM", "MMoE", "MMoE_EP", "NoSuchModel"], seeds=2,
                            lr_grid=[0.005, 0.01], out=out, epochs=1, data_path=data_dir, extra=TINY)
    table = comparison.run()
    runs = rows(os.path.join(out, "runs.csv"))
    ok = [r for r in runs if r["status"] == "ok"]
    assert len(ok) == 3 * 3  # 2 learning rates on the first seed + 1 more seed, per working model
    failed = [r for r in runs if r["status"] == "error"]
    assert {r["model"] for r in failed} == {"NoSuchModel"} and "Unknown model" in failed[0]["error"]
    for r in ok:
        assert float(r["test_auc_young"]) > 0 and float(r["params"]) > 0 and float(r["train_s_per_epoch"]) > 0
    assert os.path.isfile(os.path.join(out, "auc.png")) and os.path.getsize(os.path.join(out, "auc.png")) > 1000
    assert open(os.path.join(out, "table.md")).read() == table
    assert "| DeepFM |" in table and "| MMoE_EP |" in table and "%)" in table  # relative change vs MMoE
    assert "NoSuchModel | failed" in table
    # resume: a new comparison over the same folder recomputes nothing that finished
    again = Comparison("ml-100k-msr", ["DeepFM", "MMoE", "MMoE_EP"], seeds=2, lr_grid=[0.005, 0.01], out=out,
                       epochs=1, data_path=data_dir, extra=TINY)
    again.run()
    assert len([r for r in rows(os.path.join(out, "runs.csv")) if r["status"] == "ok"]) == 9


def test_families_come_from_the_variant_list(monkeypatch):
    from recbole_llm4msr.compare import family
    from recbole_llm4msr.model import variants

    assert family("MMoE_LLM4MSR") == ("MMoE", "llm4msr") and family("STAR_DN") == ("STAR", "dn")
    assert family("DeepFM") == ("DeepFM", "plain") and family("MMoE") == ("MMoE", "plain")
    seventh = variants.make_variant(variants.BACKBONES[0], "ep")
    monkeypatch.setitem(variants.VARIANTS, "Seventh_EP", type("Seventh_EP", (seventh,), {}))
    assert family("Seventh_EP") == ("SharedBottom", "ep")  # a new name is recognised with no change to compare.py
