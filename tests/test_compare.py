"""llm4msr-compare: significance marker, the tiny grid's outputs, resume and crash handling."""
import csv
import json
import logging
import os
import sys

import pytest

from recbole_llm4msr.compare import (
    Comparison,
    baselines,
    corrected,
    machine,
    family,
    mark,
    paired_test,
    parse_label,
    run_file_name,
    significant,
    split_models,
)

TINY = {"embedding_size": 4, "expert_mlp_sizes": [16], "tower_mlp_sizes": [8], "expert_num": 2,
        "train_batch_size": 4096}
# --set keys must be read by one of the labels (Comparison._check_models): MMoE's widths mean nothing to DeepFM
TINY_LLM4MSR = dict(TINY, meta_bottom_hidden_sizes=[8], meta_parallel_hidden_sizes=[8])
TINY_DEEPFM = {"embedding_size": 4, "train_batch_size": 4096}


def test_significance_marks_gains_and_losses_with_a_correction():
    assert significant([0.80, 0.82, 0.81, 0.83], [0.70, 0.71, 0.72, 0.70])
    assert not significant([0.80, 0.70, 0.75], [0.76, 0.74, 0.75])  # noisy: no marker
    assert not significant([0.8], [0.7])  # one seed: no test
    rel, t, p = paired_test([0.80, 0.82, 0.81, 0.83], [0.70, 0.71, 0.72, 0.70])
    assert round(rel, 2) == 15.19 and p < 0.01 and t > 0  # means 0.815 vs 0.7075
    worse = paired_test([0.70, 0.71, 0.72, 0.70], [0.80, 0.82, 0.81, 0.83])
    assert mark(worse[0], worse[2], worse[2]) == ("▼", "▼▼")  # a significant loss is marked too
    assert mark(+1.0, 0.01, 0.2) == ("▲", "") and mark(+1.0, 0.2, 0.3) == ("", "")
    # Benjamini-Hochberg: p_(i) * m / i, made monotone
    assert corrected([0.01, 0.04, 0.03, 0.2]) == pytest.approx([0.04, 0.0533333, 0.0533333, 0.2], rel=1e-4)
    assert family("MMoE_LLM4MSR") == ("MMoE", "llm4msr") and family("DeepFM") == ("DeepFM", "plain")


def test_labels_with_controls_and_settings():
    assert parse_label("MMoE_LLM4MSR[shuffle]") == ("MMoE_LLM4MSR", {"knowledge_control": "shuffle"})
    assert parse_label("MMoE[dropout_prob=0.2;embedding_size=8]") == ("MMoE", {"dropout_prob": 0.2, "embedding_size": 8})
    assert family("STAR_LLM4MSR[zero]") == ("STAR", "llm4msr[zero]")
    labels = split_models("MMoE,MMoE_LLM4MSR,MMoE_LLM4MSR[shuffle],MMoE[a=1;b=2]")
    assert labels == ["MMoE", "MMoE_LLM4MSR", "MMoE_LLM4MSR[shuffle]", "MMoE[a=1;b=2]"]
    assert baselines("MMoE_LLM4MSR", labels) == [("MMoE", "vs plain backbone"),
                                                 ("MMoE_LLM4MSR[shuffle]", "vs shuffle control")]
    assert baselines("MMoE_LLM4MSR[shuffle]", labels) == [("MMoE", "vs plain backbone")]
    # a variant with its own settings (knowledge of an aligned LLM): against the default variant and against the
    # control with the same settings, whatever the order inside the brackets
    labels += ["MMoE_LLM4MSR[llm=/m/aligned]", "MMoE_LLM4MSR[shuffle;llm=/m/aligned]", "MMoE_LLM4MSR[llm=/m/other]"]
    assert baselines("MMoE_LLM4MSR[llm=/m/aligned]", labels) == [
        ("MMoE", "vs plain backbone"), ("MMoE_LLM4MSR", "vs MMoE_LLM4MSR"),
        ("MMoE_LLM4MSR[shuffle;llm=/m/aligned]", "vs shuffle control")]
    assert baselines("MMoE_LLM4MSR[shuffle;llm=/m/aligned]", labels) == [("MMoE", "vs plain backbone")]
    assert baselines("MMoE[a=1;b=2]", labels) == []
    with pytest.raises(ValueError, match="neither a control"):
        parse_label("MMoE_LLM4MSR[shufle]")


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_tiny_grid_outputs_resume_and_crash(data_dir, tmp_path, workdir):
    out = str(tmp_path / "cmp")
    # a known model and a setting of a well-formed value whose run fails (RecBole looks the validation metric up only
    # after the first epoch; a bad value of a setting checked upfront, e.g. expert_num=0 or train_batch_size=0, stops
    # the comparison before any run: test_hostile_input)
    crashing = "MMoE[valid_metric=nosuch]"
    comparison = Comparison("ml-100k-msr", ["MMoE", "MMoE_EP", crashing], seeds=2,
                            lr_grid=[0.005, 0.01], out=out, epochs=1, data_path=data_dir, extra=TINY)
    table = comparison.run()
    runs = rows(os.path.join(out, "runs.csv"))
    ok = [r for r in runs if r["status"] == "ok"]
    assert len(ok) == 2 * 4  # 2 learning rates on the lr seed + 2 reported seeds, per working model
    assert {r["seed"] for r in ok if r["phase"] == "lr-search"} == {"2019"}  # chosen on a seed never reported
    assert {r["seed"] for r in ok if r["phase"] == "seeds"} == {"2020", "2021"}
    assert all(len(r["config_hash"]) == 12 for r in ok)
    # where they ran: one machine, described in machines.json and named under the table
    digest, description = machine()
    assert {r["machine"] for r in ok} == {digest} and len(digest) == 8
    with open(os.path.join(out, "machines.json")) as f:
        assert json.load(f) == {digest: description}
    import torch
    assert description["torch"] == torch.__version__ and description["logical_cpus"] == os.cpu_count()
    failed = [r for r in runs if r["status"] == "error"]
    assert {r["model"] for r in failed} == {crashing} and failed[0]["error"]
    for r in ok:
        assert float(r["test_auc_young"]) > 0 and float(r["params"]) > 0 and float(r["train_s_per_epoch"]) > 0
    assert os.path.isfile(os.path.join(out, "auc.png")) and os.path.getsize(os.path.join(out, "auc.png")) > 1000
    assert open(os.path.join(out, "table.md")).read() == table
    assert "| MMoE |" in table and "| MMoE_EP |" in table and "%)" in table  # relative change vs MMoE
    assert "†" in table and "Benjamini-Hochberg" in table  # a 2-rate grid: the best rate is always at an edge
    assert f"{crashing} | failed" in table
    assert f"The reported runs ran on 1 machine(s) (`machines.json`: {digest} 4 run(s))." in table
    tests = rows(os.path.join(out, "tests.csv"))
    assert {(t["model"], t["baseline"]) for t in tests} == {("MMoE_EP", "MMoE")} and len(tests) == 4
    assert all(t["test"].startswith("paired t-test") and t["correction"] == "Benjamini-Hochberg" for t in tests)
    assert all(float(t["p_corrected"]) >= float(t["p_raw"]) for t in tests if t["p_raw"])
    # resume: a new comparison over the same folder recomputes nothing that finished
    again = Comparison("ml-100k-msr", ["MMoE", "MMoE_EP"], seeds=2, lr_grid=[0.005, 0.01], out=out,
                       epochs=1, data_path=data_dir, extra=TINY)
    assert all(again.done(r["model"], int(r["seed"]), float(r["learning_rate"])) for r in ok)
    mtimes = {f: os.path.getmtime(os.path.join(out, "runs", f)) for f in os.listdir(os.path.join(out, "runs"))}
    again.run()
    assert len([r for r in rows(os.path.join(out, "runs.csv")) if r["status"] == "ok"]) == 8
    assert mtimes == {f: os.path.getmtime(os.path.join(out, "runs", f)) for f in mtimes}
    # another config into the same folder reuses nothing
    for changed in (dict(epochs=2, extra=TINY), dict(epochs=1, extra=dict(TINY, embedding_size=8))):
        other = Comparison("ml-100k-msr", ["MMoE"], seeds=2, lr_grid=[0.005, 0.01], out=out, data_path=data_dir,
                           **changed)
        assert other.done("MMoE", 2020, 0.005) is None and other.done("MMoE", 2019, 0.01) is None


def test_relative_data_path_and_the_lr_seed_rule(data_dir, tmp_path, monkeypatch):
    parent, name = os.path.split(data_dir)
    monkeypatch.chdir(parent)
    comparison = Comparison("ml-100k-msr", ["DeepFM"], seeds=1, lr_grid=[0.01], out="cmp-rel", epochs=1,
                            data_path=name, extra=TINY_DEEPFM)
    assert comparison.data_path == data_dir and comparison.out == os.path.join(parent, "cmp-rel")
    table = comparison.run()
    # a one-rate grid is no search: no lr-seed run, the rate as given, no edge flag
    assert [(r["phase"], r["status"]) for r in rows(os.path.join(parent, "cmp-rel", "runs.csv"))] == [("seeds", "ok")]
    assert "| DeepFM | 0.01 |" in table and "one learning rate given (0.01; no search)" in table
    # labels run in parallel folders are merged into one table (nothing re-run: the rows' hashes match)
    from recbole_llm4msr.compare import main

    assert main(["--dataset=ml-100k-msr", "--models=DeepFM", "--seeds=1", "--lr_grid=0.01", "--epochs=1",
                 f"--data_path={name}", "--out=cmp-merged", "--merge=cmp-rel"]
                + [f"--set={k}={v}" for k, v in TINY_DEEPFM.items()]) == 0
    merged = open(os.path.join(parent, "cmp-merged", "table.md")).read()
    assert merged == table and len(os.listdir(os.path.join(parent, "cmp-merged", "runs"))) == 1
    assert main(["--dataset=ml-100k-msr", "--models=DeepFM", f"--data_path={name}", "--out=x",
                 "--merge=no-such-folder"]) == 2
    with pytest.raises(ValueError, match="not reported"):
        Comparison("ml-100k-msr", ["DeepFM"], seeds=3, lr_grid=[0.01], out="x", lr_seed=2021)


def test_controls_sit_beside_the_real_run(data_dir, store, tmp_path, workdir):
    out = str(tmp_path / "ctl")
    labels = ["MMoE_LLM4MSR", "MMoE_LLM4MSR[shuffle]"]
    comparison = Comparison("ml-100k-msr", labels, seeds=2, lr_grid=[0.01], out=out, epochs=1, data_path=data_dir,
                            extra=dict(TINY_LLM4MSR, knowledge_store=store))
    table = comparison.run()
    line = next(x for x in table.splitlines() if x.startswith("| MMoE_LLM4MSR |"))
    assert "[shuffle] " in line and "%" in line  # the 'vs control' cell
    assert "| MMoE_LLM4MSR[shuffle] |" in table
    tests = rows(os.path.join(out, "tests.csv"))
    assert {t["relation"] for t in tests} == {"vs shuffle control"}
    runs = rows(os.path.join(out, "runs.csv"))
    real = [r for r in runs if r["model"] == "MMoE_LLM4MSR" and r["phase"] == "seeds"]
    shuffled = [r for r in runs if r["model"] == "MMoE_LLM4MSR[shuffle]" and r["phase"] == "seeds"]
    assert real[0]["params"] == shuffled[0]["params"]  # same architecture
    assert real[0]["test_auc"] != shuffled[0]["test_auc"] and real[0]["config_hash"] != shuffled[0]["config_hash"]


def test_families_come_from_the_variant_list(monkeypatch):
    from recbole_llm4msr.compare import family
    from recbole_llm4msr.model import variants

    assert family("MMoE_LLM4MSR") == ("MMoE", "llm4msr") and family("STAR_DN") == ("STAR", "dn")
    assert family("DeepFM") == ("DeepFM", "plain") and family("MMoE") == ("MMoE", "plain")
    seventh = variants.make_variant(variants.BACKBONES[0], "ep")
    monkeypatch.setitem(variants.VARIANTS, "Seventh_EP", type("Seventh_EP", (seventh,), {}))
    assert family("Seventh_EP") == ("SharedBottom", "ep")  # a new name is recognised with no change to compare.py


def test_the_plot_needs_no_extra():
    """The plot is part of the feature: matplotlib (and scipy for the tests) are regular dependencies."""
    from importlib.metadata import requires

    needed = {r.split(">")[0].split("=")[0].split("<")[0].strip().lower() for r in requires("recbole-llm4msr")
              if "extra ==" not in r}
    assert {"matplotlib", "scipy", "peft"} <= needed


def test_the_hash_names_the_knowledge_model_a_run_gets_by_default(data_dir, tmp_path):
    """A run that names no LLM gets the current default (the embedded encoder): its hash differs from a run on the
    old default (SmolLM2), which keeps the hash it had before the default changed when it names llm: smollm2.
    (An empty knowledge cache: no store here, so knowledge_norm: auto is hashed as 'auto' on every machine.)"""
    cache = str(tmp_path / "empty-cache")

    def digest(label, **extra):
        return Comparison("ml-100k-msr", [label, "MMoE_LLM4MSR"], seeds=1, lr_grid=[0.01], out=str(tmp_path / "h"), epochs=1,
                          data_path=data_dir, extra=dict(TINY_LLM4MSR, knowledge_cache_dir=cache, **extra)
                          ).config_hash(label, 2020, 0.01)

    default, old = digest("MMoE_LLM4MSR"), digest("MMoE_LLM4MSR", llm="smollm2", knowledge_user_vector="prompt")
    assert default != old and digest("MMoE_LLM4MSR", llm="minilm") == default
    assert digest("MMoE_LLM4MSR", llm="smollm2", llm_mode="generate") != old
    # the user-vector recipe is part of the hash: items (the default) / the user prompt (sessions 7-8, the paper's)
    assert digest("MMoE_LLM4MSR", knowledge_user_vector="items") == default
    assert digest("MMoE_LLM4MSR", knowledge_user_vector="prompt") != default
    assert digest("MMoE_LLM4MSR", llm="smollm2") not in (old, default)  # SmolLM2 on item texts: a third recipe
    # what the hash was before: the config alone (llm: smollm2 was the default, so it was never written)
    import hashlib
    import json

    from recbole_llm4msr.compare import VOLATILE
    from recbole_llm4msr.config import MultiScenarioConfig
    from recbole_llm4msr.knowledge.fingerprint import file_digest
    from recbole_llm4msr.results import json_safe_config

    comparison = Comparison("ml-100k-msr", ["MMoE_LLM4MSR"], seeds=1, lr_grid=[0.01], out=str(tmp_path / "h"),
                            epochs=1, data_path=data_dir, extra=TINY_LLM4MSR)
    name, config_dict = comparison.run_config("MMoE_LLM4MSR", 2020, 0.01)
    config = MultiScenarioConfig(model=name, dataset="ml-100k-msr", config_dict=config_dict)
    effective = {k: v for k, v in json_safe_config(config).items() if k not in VOLATILE}
    folder = os.path.join(data_dir, "ml-100k-msr")
    data = {f: file_digest(os.path.join(folder, f)) for f in sorted(os.listdir(folder))
            if f.endswith(".inter") or f.endswith(".user") or f.endswith(".item")}

    def sha(cfg):
        return hashlib.sha256(json.dumps({"config": cfg, "data": data}, sort_keys=True,
                                         default=str).encode()).hexdigest()[:12]

    assert effective["meta_generator"] == "full" and "llm" not in effective
    assert effective["knowledge_out_of_fold"] == 0  # session 32's setting, neutral at 0 too
    assert effective["knowledge_out_of_fold_mode"] == "out"
    before = {k: v for k, v in effective.items()
              if k not in ("meta_generator", "knowledge_out_of_fold", "knowledge_out_of_fold_mode")}
    assert sha(before) == old  # the settings did not exist yet
    # a row hashed while meta_generator: full was written out (the day it was added) counts as well
    on_old_default = Comparison("ml-100k-msr", ["MMoE_LLM4MSR"], seeds=1, lr_grid=[0.01], out=str(tmp_path / "h"),
                                epochs=1, data_path=data_dir, extra=dict(TINY_LLM4MSR, llm="smollm2",
                                                                         knowledge_user_vector="prompt",
                                                                         knowledge_cache_dir=cache))
    written = {k: v for k, v in effective.items()  # meta_generator written out, as on the day it was added
               if k not in ("knowledge_out_of_fold", "knowledge_out_of_fold_mode")}
    assert on_old_default.config_hashes("MMoE_LLM4MSR", 2020, 0.01)[:2] == (old, sha(written))
    assert sha(effective) in on_old_default.config_hashes("MMoE_LLM4MSR", 2020, 0.01)
    # a plain model does not read a knowledge store: with or without one it is the same run (and old rows that
    # wrote the store out still count)
    assert digest("MMoE", knowledge_store="/some/store") == digest("MMoE")
    # nor does it normalise knowledge: a knowledge_norm given to every label of a comparison leaves it the same run
    assert digest("MMoE", knowledge_norm="none") == digest("MMoE")
    assert digest("MMoE_DN", knowledge_norm="whiten") == digest("MMoE_DN")
    assert digest("MMoE_LLM4MSR", knowledge_norm="whiten") != digest("MMoE_LLM4MSR", knowledge_norm="none")
    with_store = Comparison("ml-100k-msr", ["MMoE", "MMoE_LLM4MSR"], seeds=1, lr_grid=[0.01], out=str(tmp_path / "h"), epochs=1,
                            data_path=data_dir, extra=dict(TINY_LLM4MSR, knowledge_store="/some/store"))
    plain_raw = {k: v for k, v in json_safe_config(MultiScenarioConfig(
        model="MMoE", dataset="ml-100k-msr", config_dict=with_store.run_config("MMoE", 2020, 0.01)[1])).items()
        if k not in VOLATILE}
    assert plain_raw["knowledge_store"] == "/some/store"
    assert with_store.config_hashes("MMoE", 2020, 0.01) == (digest("MMoE"), sha(plain_raw))
    assert digest("MMoE_LLM4MSR", knowledge_store="/some/store") != digest("MMoE_LLM4MSR", knowledge_store="/other")
    # an explicit store decides the vectors by itself, and a model without knowledge has no LLM: both untouched
    from recbole_llm4msr.compare import resolve_knowledge_defaults

    config["knowledge_store"] = "/some/store"
    assert resolve_knowledge_defaults(config, dict(effective)) == before  # only the neutral setting left out
    plain = MultiScenarioConfig(model="MMoE", dataset="ml-100k-msr", config_dict=comparison.run_config("MMoE", 2020,
                                                                                                        0.01)[1])
    assert resolve_knowledge_defaults(plain, {"a": 1}) == {"a": 1}
    assert digest("MMoE", llm="smollm2") == digest("MMoE")  # naming the old default changes no plain run's hash
    # a setting added later, at its neutral value, is not in the digest; another value is another run
    assert digest("MMoE_LLM4MSR", meta_generator="full") == default
    assert digest("MMoE_LLM4MSR", meta_generator="factored") != default
    assert digest("MMoE_LLM4MSR", knowledge_out_of_fold=0) == default
    assert digest("MMoE_LLM4MSR", knowledge_out_of_fold=5) != default
    assert digest("MMoE_LLM4MSR", knowledge_out_of_fold_mode="out") == default


def test_a_label_whose_run_another_label_already_made_is_not_trained_again(data_dir, tmp_path, monkeypatch):
    """``DeepFM[llm=smollm2]`` is the run ``DeepFM`` is (a plain model reads no knowledge: same config hash): its row
    is the twin's, named and with its results file, and the table tests the two as any pair."""
    import recbole_llm4msr.quick_start as quick_start

    trained = []
    real = quick_start.run_recbole
    monkeypatch.setattr(quick_start, "run_recbole", lambda **kw: trained.append(kw["model"]) or real(**kw))
    monkeypatch.chdir(tmp_path)
    out = str(tmp_path / "cmp")
    comparison = Comparison("ml-100k-msr", ["DeepFM", "DeepFM[llm=smollm2]", "DeepFM[embedding_size=8]"], seeds=1,
                            lr_grid=[0.01], out=out, epochs=1, data_path=data_dir, extra=TINY_DEEPFM)
    assert comparison.twin("DeepFM[llm=smollm2]", 2020, 0.01) is None  # nothing run yet
    table = comparison.run()
    assert trained == ["DeepFM", "DeepFM"]  # the plain label and the other embedding size; not the twin
    got = {r["model"]: r for r in rows(os.path.join(out, "runs.csv"))}
    twin = got["DeepFM[llm=smollm2]"]
    assert twin["reused_from"] == "DeepFM" and got["DeepFM"].get("reused_from", "") == ""
    assert twin["test_auc"] == got["DeepFM"]["test_auc"] and twin["config_hash"] == got["DeepFM"]["config_hash"]
    assert got["DeepFM[embedding_size=8]"]["config_hash"] != got["DeepFM"]["config_hash"]
    assert sorted(os.listdir(os.path.join(out, "runs"))) == sorted(
        run_file_name(label, 0.01, 2020) for label in got)
    assert "| DeepFM[llm=smollm2] | 0.01 |" in table
    # a second run of the comparison finds every row as its own (nothing trained, nothing copied again)
    trained.clear()
    assert Comparison("ml-100k-msr", ["DeepFM", "DeepFM[llm=smollm2]"], seeds=1, lr_grid=[0.01], out=out, epochs=1,
                      data_path=data_dir, extra=TINY_DEEPFM).run() and trained == []


def test_merging_keeps_the_rows_of_every_config_in_any_order(tmp_path, monkeypatch):
    """Folders holding the same (model, seed, rate) under different configs (e.g. old SmolLM2-knowledge rows and new
    default-knowledge rows) merge in any order: the row of the current config is found, the other is kept beside it;
    a re-run of the same config and a failed row are replaced."""
    from recbole_llm4msr.compare import FIELDS

    def folder(name, hash_, auc, status="ok"):
        path = tmp_path / name
        path.mkdir()
        with open(path / "runs.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=FIELDS, restval="")
            w.writeheader()
            w.writerow({"model": "MMoE_LLM4MSR", "phase": "seeds", "seed": "2020", "learning_rate": "0.01",
                        "status": status, "config_hash": hash_, "test_auc": auc})
        return str(path)

    current, other = folder("current", "aaaaaaaaaaaa", "0.7"), folder("other", "bbbbbbbbbbbb", "0.6")
    monkeypatch.setattr(Comparison, "config_hashes", lambda self, label, seed, lr: ("aaaaaaaaaaaa",))
    for order in ([current, other], [other, current]):
        out = str(tmp_path / f"merged-{order[0][-5:]}")
        comparison = Comparison("ml-100k-msr", ["MMoE_LLM4MSR"], seeds=1, lr_grid=[0.01], out=out)
        assert comparison.merge(order) == 2
        assert comparison.done("MMoE_LLM4MSR", 2020, 0.01)["test_auc"] == "0.7"
        assert sorted(r["config_hash"] for r in rows(os.path.join(out, "runs.csv"))) == ["aaaaaaaaaaaa",
                                                                                          "bbbbbbbbbbbb"]
    # the same config run again replaces its row; a failed row gives way to the finished one
    rerun = folder("rerun", "aaaaaaaaaaaa", "0.71")
    failed = folder("failed", "cccccccccccc", "", status="error")
    comparison = Comparison("ml-100k-msr", ["MMoE_LLM4MSR"], seeds=1, lr_grid=[0.01], out=str(tmp_path / "m3"))
    comparison.merge([failed, current, rerun])
    assert [(r["config_hash"], r["test_auc"]) for r in comparison.rows] == [("aaaaaaaaaaaa", "0.71")]
    comparison.merge([other])
    assert comparison.done("MMoE_LLM4MSR", 2020, 0.01)["test_auc"] == "0.71" and len(comparison.rows) == 2


def test_the_table_says_on_how_many_machines_its_runs_ran_and_merging_keeps_their_descriptions(tmp_path,
                                                                                                 monkeypatch):
    """Rows of one config from two machines (e.g. a folder merged from another session): machines.json holds both
    descriptions, the table names both and warns; rows from before the column are counted apart; a folder where no
    row records a machine gets no line (its table is what it was)."""
    from recbole_llm4msr.compare import FIELDS

    def folder(name, machines, seeds=(2020, 2021)):
        path = tmp_path / name
        path.mkdir()
        with open(path / "runs.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=FIELDS, restval="")
            w.writeheader()
            for label in ("MMoE", "MMoE_LLM4MSR"):
                for seed, where in zip(seeds, machines):
                    w.writerow({"model": label, "phase": "seeds", "seed": seed, "learning_rate": "0.01",
                                "status": "ok", "config_hash": "aaaaaaaaaaaa", "test_auc": 0.7 + seed / 1e6,
                                "valid_auc": 0.7, "train_s_per_epoch": 1.0, "params": 10, "machine": where})
        if any(machines):
            with open(path / "machines.json", "w") as f:
                json.dump({m: {"cpu": f"cpu of {m}"} for m in machines if m}, f)
        return str(path)

    monkeypatch.setattr(Comparison, "config_hashes", lambda self, label, seed, lr: ("aaaaaaaaaaaa",))
    old = Comparison("ml-100k-msr", ["MMoE", "MMoE_LLM4MSR"], seeds=2, lr_grid=[0.01],
                     out=folder("old", ["", ""]))
    assert "machine" not in old.report()
    one = folder("one", ["11111111", ""], seeds=(2020, 2021))
    two = folder("two", ["22222222"], seeds=(2022,))
    merged = Comparison("ml-100k-msr", ["MMoE", "MMoE_LLM4MSR"], seeds=3, lr_grid=[0.01], out=str(tmp_path / "m"))
    merged.merge([one, two])
    with open(tmp_path / "m" / "machines.json") as f:
        assert json.load(f) == {"11111111": {"cpu": "cpu of 11111111"}, "22222222": {"cpu": "cpu of 22222222"}}
    table = merged.report()
    assert ("The reported runs ran on 2 machine(s) (`machines.json`: 11111111 2 run(s), 22222222 2 run(s)); 2 ran "
            "before machines were recorded. Runs of one config on different machines can differ") in table


def test_merging_never_replaces_a_result_file_with_another_configs(tmp_path, monkeypatch, capsys):
    """The same label run under another config (another --set, e.g. another knowledge store) has a result file of the
    same name: merged after the current config's folder, its row is kept in runs.csv but its file is not copied."""
    from recbole_llm4msr.compare import FIELDS, main

    def folder(name, hash_, auc):
        path = tmp_path / name
        (path / "runs").mkdir(parents=True)
        with open(path / "runs.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=FIELDS, restval="")
            w.writeheader()
            w.writerow({"model": "MMoE_LLM4MSR", "phase": "seeds", "seed": "2020", "learning_rate": "0.01",
                        "status": "ok", "config_hash": hash_, "valid_auc": auc, "test_auc": auc,
                        "train_s_per_epoch": "1.0", "params": "100"})
        (path / "runs" / run_file_name("MMoE_LLM4MSR", 0.01, 2020)).write_text(json.dumps({"from": name}))
        return str(path)

    current, other = folder("current", "aaaaaaaaaaaa", "0.7"), folder("other", "bbbbbbbbbbbb", "0.6")
    monkeypatch.setattr(Comparison, "config_hashes", lambda self, label, seed, lr: ("aaaaaaaaaaaa",))
    for order in ([current, other], [other, current]):
        out = tmp_path / f"merged-{order[0][-5:]}"
        comparison = Comparison("ml-100k-msr", ["MMoE_LLM4MSR"], seeds=1, lr_grid=[0.01], out=str(out))
        assert comparison.merge(order) == 2 and comparison.merge_other_configs == {"MMoE_LLM4MSR": 1}
        assert sorted(r["config_hash"] for r in rows(str(out / "runs.csv"))) == ["aaaaaaaaaaaa", "bbbbbbbbbbbb"]
        assert json.load(open(out / "runs" / run_file_name("MMoE_LLM4MSR", 0.01, 2020))) == {"from": "current"}
    assert main(["--dataset=ml-100k-msr", "--models=MMoE_LLM4MSR", "--seeds=1", "--lr_grid=0.01",
                 f"--out={tmp_path / 'm2'}", f"--merge={current},{other}"]) == 0
    assert "without their result files: MMoE_LLM4MSR (1 run(s))" in capsys.readouterr().err


def test_merging_takes_only_the_labels_asked_for(tmp_path, monkeypatch, capsys):
    """A source folder may hold other labels' runs (e.g. another table's): only the --models labels' rows and result
    files are taken; the rest is named, not copied."""
    from recbole_llm4msr.compare import FIELDS, main

    source = tmp_path / "source"
    (source / "runs").mkdir(parents=True)
    with open(source / "runs.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS, restval="")
        w.writeheader()
        for label, seed in (("MMoE", "2020"), ("MMoE_LLM4MSR[llm=other]", "2020"), ("MMoE_LLM4MSR[llm=other]", "2021")):
            w.writerow({"model": label, "phase": "seeds", "seed": seed, "learning_rate": "0.01", "status": "ok",
                        "config_hash": "aaaaaaaaaaaa", "valid_auc": "0.7", "test_auc": "0.7",
                        "train_s_per_epoch": "1.0", "params": "100"})
    for label in ("MMoE", "MMoE_LLM4MSR[llm=other]"):
        (source / "runs" / run_file_name(label, 0.01, 2020)).write_text("{}")
    assert run_file_name("MMoE", "0.01", "2020") == "MMoE-lr0.01-seed2020.json"  # as a run names its file
    monkeypatch.setattr(Comparison, "config_hashes", lambda self, label, seed, lr: ("aaaaaaaaaaaa",))
    out = tmp_path / "merged"
    comparison = Comparison("ml-100k-msr", ["MMoE"], seeds=1, lr_grid=[0.01], out=str(out))
    assert comparison.merge([str(source)]) == 1
    assert comparison.merge_left_out == {"MMoE_LLM4MSR[llm=other]": 2}
    assert [r["model"] for r in rows(str(out / "runs.csv"))] == ["MMoE"]
    assert os.listdir(out / "runs") == ["MMoE-lr0.01-seed2020.json"]
    assert main(["--dataset=ml-100k-msr", "--models=MMoE", "--seeds=1", "--lr_grid=0.01", f"--out={tmp_path / 'm2'}",
                 f"--merge={source}"]) == 0
    printed = capsys.readouterr()
    assert "left out (labels not in --models): MMoE_LLM4MSR[llm=other] (2 run(s))" in printed.err
    assert "| MMoE | 0.01 |" in printed.out and "LLM4MSR" not in printed.out


def test_two_processes_writing_one_folder_both_keep_their_runs(tmp_path):
    """Two comparisons given the same --out (e.g. two label groups started at once): each rewrites runs.csv after
    every run; the rows the other process wrote meanwhile must survive (they were lost before)."""
    out = str(tmp_path / "shared")
    first = Comparison("ml-100k-msr", ["MMoE"], seeds=1, lr_grid=[0.01], out=out)
    second = Comparison("ml-100k-msr", ["DeepFM"], seeds=1, lr_grid=[0.01], out=out)  # read the folder while empty

    def row(model, seed, auc):
        return {"model": model, "phase": "seeds", "seed": str(seed), "learning_rate": "0.01", "status": "ok",
                "config_hash": f"{model[:4]}{seed}", "test_auc": auc}

    first._record(row("MMoE", 2020, "0.70"))
    second._record(row("DeepFM", 2020, "0.69"))
    first._record(row("MMoE", 2021, "0.71"))
    second._record(row("DeepFM", 2021, "0.68"))
    on_disk = sorted((r["model"], r["seed"], r["test_auc"]) for r in rows(os.path.join(out, "runs.csv")))
    assert on_disk == [("DeepFM", "2020", "0.69"), ("DeepFM", "2021", "0.68"), ("MMoE", "2020", "0.70"),
                       ("MMoE", "2021", "0.71")]
    second._record(row("DeepFM", 2021, "0.67"))  # a re-run of the same config still replaces its row
    assert sorted(r["test_auc"] for r in rows(os.path.join(out, "runs.csv")) if r["model"] == "DeepFM") == [
        "0.67", "0.69"]


def test_the_table_names_a_variant_tested_against_the_default_variant(tmp_path, monkeypatch):
    """A variant with settings (the raw-LLM ablation, knowledge of another LLM) beside the default variant is tested
    against it; the table's control column names it (the report crashed on a baseline without brackets)."""
    from recbole_llm4msr.compare import FIELDS

    labels = ["SASRec", "SASRec_TSLRec", "SASRec_TSLRec[tslrec_sft=False]", "SASRec_TSLRec[shuffle]"]
    ndcg = {"SASRec": (0.010, 0.012), "SASRec_TSLRec": (0.020, 0.023), "SASRec_TSLRec[tslrec_sft=False]": (0.018, 0.022),
            "SASRec_TSLRec[shuffle]": (0.011, 0.010)}
    out = tmp_path / "cmp"
    out.mkdir()
    with open(out / "runs.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS + ["test_ndcg@10"], restval="")
        w.writeheader()
        for label in labels:
            for seed, value in zip((2020, 2021), ndcg[label]):
                w.writerow({"model": label, "phase": "seeds", "seed": seed, "learning_rate": "0.001", "status": "ok",
                            "config_hash": "aaaaaaaaaaaa", "test_ndcg@10": value, "train_s_per_epoch": 1.0,
                            "params": 10})
    monkeypatch.setattr(Comparison, "config_hashes", lambda self, label, seed, lr: ("aaaaaaaaaaaa",))
    monkeypatch.setattr(Comparison, "_check_models", lambda self: None)  # no dataset here: nothing is built
    comparison = Comparison("amazon-art-office", labels, seeds=2, lr_grid=[0.001], out=str(out), metric="ndcg@10")
    table = comparison.report()
    raw_row = next(line for line in table.splitlines() if line.startswith("| SASRec_TSLRec[tslrec_sft=False] |"))
    assert "vs SASRec_TSLRec -" in raw_row  # 0.0200 vs 0.0215: worse than the default variant
    tslrec_row = next(line for line in table.splitlines() if line.startswith("| SASRec_TSLRec |"))
    assert "[shuffle] +" in tslrec_row


def test_cross_compare_pairs_labels_of_two_folders_each_at_its_own_rate(tmp_path, monkeypatch, capsys):
    """benchmarks/cross_compare.py: a label searched over a grid (its rate is the best validation AUC of the lr seed)
    against a label run at one given rate in another folder; a row of another config never counts; a label without
    its reported seeds is an error naming the folder."""
    from benchmarks.cross_compare import main as cross_main
    from recbole_llm4msr.compare import FIELDS

    def folder(name, rows_):
        path = tmp_path / name
        path.mkdir()
        with open(path / "runs.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=FIELDS, restval="")
            w.writeheader()
            for model, phase, seed, lr, auc, valid, hash_ in rows_:
                w.writerow({"model": model, "phase": phase, "seed": seed, "learning_rate": lr, "status": "ok",
                            "config_hash": hash_, "test_auc": auc, "valid_auc": valid})
        return str(path)

    ok = "aaaaaaaaaaaa"
    searched = folder("searched", [("A", "lr-search", "2019", "0.01", "", "0.70", ok),
                                   ("A", "lr-search", "2019", "0.003", "", "0.75", ok),   # the chosen rate
                                   ("A", "seeds", "2021", "0.003", "0.999", "", "bbbbbbbbbbbb"),  # other config
                                   ("A", "seeds", "2020", "0.01", "0.900", "", ok),       # not the chosen rate
                                   ("A", "seeds", "2020", "0.003", "0.780", "", ok),
                                   ("A", "seeds", "2021", "0.003", "0.782", "", ok)])
    single = folder("single", [("B", "seeds", "2020", "0.003", "0.790", "", ok),
                               ("B", "seeds", "2021", "0.003", "0.794", "", ok)])
    monkeypatch.setattr(Comparison, "_check_models", lambda self: None)  # made-up labels / settings
    monkeypatch.setattr(Comparison, "config_hashes", lambda self, label, seed, lr: (ok,))
    out = tmp_path / "cross.md"
    argv_before = list(sys.argv)
    cross_main(["--dataset=ml-100k-msr", "--seeds=2", "--entry", f"a={searched}|0.003,0.01|A",
                "--entry", f"b={single}|0.003|B", "--pair", "b,a", "--out", str(out)])
    text = out.read_text()
    assert "| a | `A` |" in text and "| 0.003 | 0.7810 ± 0.0014 | 0.7800, 0.7820 |" in text
    assert "0.7920 ± 0.0028" in text
    rel = (0.792 / 0.781 - 1) * 100
    assert f"| b vs a | +{rel:.2f}% |" in text
    # the tests as a CSV and the entries as a plot beside the table
    (row,) = rows(str(tmp_path / "cross.csv"))
    assert (row["test"], row["label"], row["baseline_label"], row["seeds"]) == ("b vs a", "B", "A", "2")
    assert float(row["mean"]) == pytest.approx(0.792) and float(row["baseline_mean"]) == pytest.approx(0.781)
    assert float(row["relative_change_pct"]) == pytest.approx(rel, abs=1e-3)
    assert 0 < float(row["p_raw"]) <= float(row["p_corrected"]) <= 1 and row["correction"] == "Benjamini-Hochberg"
    assert (tmp_path / "cross.png").stat().st_size > 1000
    assert sys.argv == argv_before  # RecBole's view of the command line is restored
    with pytest.raises(SystemExit, match="single.*'B' has 2 of its 3 reported seeds"):
        cross_main(["--dataset=ml-100k-msr", "--seeds=3", "--entry", f"b={single}|0.003|B",
                    "--pair", "b,b", "--out", str(tmp_path / "x.md")])
    # an entry's own --set settings (after a fourth '|') reach its config hash: rows hashed with them count
    other = "cccccccccccc"
    given = folder("given", [("B", "seeds", "2020", "0.01", "0.800", "", other),
                             ("B", "seeds", "2021", "0.01", "0.802", "", other)])
    seen = []

    def hashes(self, label, seed, lr):
        seen.append(dict(self.extra))
        return (other,) if self.extra == {"train_batch_size": 8192, "knowledge_store": "/s/p"} else (ok,)

    monkeypatch.setattr(Comparison, "config_hashes", hashes)
    cross_main(["--dataset=ml-100k-msr", "--seeds=2", "--entry", f"b={single}|0.003|B",
                "--entry", f"g={given}|0.01|B|train_batch_size=8192;knowledge_store=/s/p", "--pair", "g,b",
                "--out", str(out)])
    assert "| g | `B` |" in out.read_text() and "0.8010 ± 0.0014" in out.read_text() and {} in seen
    with pytest.raises(SystemExit, match="given.*'B' has 0 of its 2 .*--set settings"):
        cross_main(["--dataset=ml-100k-msr", "--seeds=2", "--entry", f"g={given}|0.01|B", "--pair", "g,g",
                    "--out", str(tmp_path / "y.md")])
    capsys.readouterr()


def test_the_callers_command_line_never_reaches_recbole(data_dir, tmp_path, monkeypatch):
    """RecBole's Config reads --key=value from sys.argv: a comparison used from a script or a test whose own
    command line carries such a flag hashes (and runs) the same config, and the command line is left as it was."""
    def digest():
        return Comparison("ml-100k-msr", ["MMoE"], seeds=1, lr_grid=[0.01], out=str(tmp_path / "h"), epochs=1,
                          data_path=data_dir, extra=TINY).config_hash("MMoE", 2020, 0.01)

    clean = digest()
    monkeypatch.setattr(sys, "argv", ["script", "--epochs=7", "--embedding_size=32"])
    assert digest() == clean
    assert sys.argv == ["script", "--epochs=7", "--embedding_size=32"]


def test_a_rerun_under_another_config_keeps_the_earlier_configs_result_file(tmp_path, monkeypatch):
    """The same label run with another --set into the same --out: result files are named by (label, rate, seed), so
    the second config writes <name>-config<hash>.json (its row says so in result_file) instead of overwriting the
    first config's file; a merge copies such a file under its own name."""
    from recbole_llm4msr import quick_start

    def fake_run(model, dataset, config_dict, config_file_list):
        os.makedirs(os.path.dirname(config_dict["results_file"]), exist_ok=True)
        with open(config_dict["results_file"], "w") as f:
            json.dump({"tag": config_dict["tag"]}, f)
        metrics = {"auc": 0.7, "logloss": 0.6, "scenarios": {}}
        return {"num_parameters": 1, "results": {"best_valid": metrics, "test": metrics}}

    monkeypatch.setattr(quick_start, "run_recbole", fake_run)
    monkeypatch.setattr(Comparison, "_check_models", lambda self: None)  # made-up labels / settings
    monkeypatch.setattr(Comparison, "config_hashes", lambda self, label, seed, lr: (self.extra["tag"] * 12,))
    out = str(tmp_path / "cmp")
    plain = run_file_name("MMoE", 0.01, 2020)
    second = plain[:-5] + "-config" + "b" * 12 + ".json"
    for tag in ("a", "b", "a", "b"):  # the last two: found done, nothing run or written
        Comparison("ml-100k-msr", ["MMoE"], seeds=1, lr_grid=[0.01], out=out, extra={"tag": tag}).run_one(
            "MMoE", 2020, 0.01, "seeds")
    kept = {f: json.load(open(os.path.join(out, "runs", f))) for f in os.listdir(os.path.join(out, "runs"))}
    assert kept == {plain: {"tag": "a"}, second: {"tag": "b"}}
    assert sorted((r["config_hash"], r["result_file"]) for r in rows(os.path.join(out, "runs.csv"))) == [
        ("a" * 12, plain), ("b" * 12, second)]
    # a row written before result_file existed owns the plain name: config b again writes under its own name
    with open(os.path.join(out, "runs.csv"), newline="") as f:
        old = [dict(r, result_file="") for r in csv.DictReader(f) if r["config_hash"] == "a" * 12]
    os.remove(os.path.join(out, "runs", second))
    with open(os.path.join(out, "runs.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(old[0]))
        w.writeheader()
        w.writerows(old)
    b = Comparison("ml-100k-msr", ["MMoE"], seeds=1, lr_grid=[0.01], out=out, extra={"tag": "b"})
    assert b.result_name("MMoE", 2020, 0.01, "b" * 12) == second
    assert Comparison("ml-100k-msr", ["MMoE"], seeds=1, lr_grid=[0.01], out=out, extra={"tag": "a"}).result_name(
        "MMoE", 2020, 0.01, "a" * 12) == plain
    b.run_one("MMoE", 2020, 0.01, "seeds")
    assert json.load(open(os.path.join(out, "runs", plain))) == {"tag": "a"}
    # merged into a folder of config a: b's file has a name of its own and comes along
    merged = Comparison("ml-100k-msr", ["MMoE"], seeds=1, lr_grid=[0.01], out=str(tmp_path / "m"), extra={"tag": "a"})
    assert merged.merge([out]) == 2 and merged.merge_other_configs == {}
    assert sorted(os.listdir(tmp_path / "m" / "runs")) == sorted([plain, second])
    # merged into a folder of config b: a's row (empty result_file: the plain name) is another config's, not copied
    merged_b = Comparison("ml-100k-msr", ["MMoE"], seeds=1, lr_grid=[0.01], out=str(tmp_path / "mb"), extra={"tag": "b"})
    assert merged_b.merge([out]) == 2 and merged_b.merge_other_configs == {"MMoE": 1}
    assert os.listdir(tmp_path / "mb" / "runs") == [second]


def test_knowledge_norm_auto_is_hashed_as_its_choice_and_its_store_is_built_before_runs_are_looked_for(
        data_dir, store, tmp_path, workdir):
    """The default ``knowledge_norm: auto`` is hashed as the normalisation it resolves to, so a run under it and one
    that named the same normalisation are one run (earlier rows keep counting); while the store it is chosen on is not
    built the label is unresolved (the table says why), and run() builds the store before it looks for rows."""
    from recbole_llm4msr.knowledge.loader import NORMS
    from tests.knowledge_helpers import tiny_model_dir

    def comparison(out, **extra):
        return Comparison("ml-100k-msr", ["MMoE_LLM4MSR"], seeds=1, lr_grid=[0.01], out=str(tmp_path / out),
                          epochs=1, data_path=data_dir, extra=dict(TINY, **extra))

    def digest(**extra):
        return comparison("h", **extra).config_hash("MMoE_LLM4MSR", 2020, 0.01)

    # a finished store named: auto is its choice
    given = comparison("h", knowledge_store=store)
    auto = given.config_hash("MMoE_LLM4MSR", 2020, 0.01)
    chosen = json.load(open(os.path.join(store, "norm-choice.json")))["chosen"]
    assert not given.unresolved and chosen in NORMS
    assert auto == digest(knowledge_store=store, knowledge_norm=chosen)
    assert all(digest(knowledge_store=store, knowledge_norm=n) != auto for n in NORMS if n != chosen)

    # the store the settings name is not built yet: unresolved, and the table says why
    llm = str(tiny_model_dir(tmp_path))
    settings = dict(llm=llm, knowledge_user_vector="prompt", knowledge_limit_users=150, prompt_max_tokens=4000,
                    knowledge_cache_dir=str(tmp_path / "kc"))
    fresh = comparison("fresh", **settings)
    unresolved = fresh.config_hash("MMoE_LLM4MSR", 2020, 0.01)
    assert fresh.unresolved == {"MMoE_LLM4MSR"}
    assert "the knowledge store it is chosen on is not built here" in fresh.report()
    # a store that cannot even be planned here (an LLM this machine lacks) is unresolved too, not a crash of the
    # report; a run then records why
    missing = comparison("missing", llm=str(tmp_path / "no-such-model"), knowledge_cache_dir=str(tmp_path / "kc2"))
    missing.config_hash("MMoE_LLM4MSR", 2020, 0.01)
    assert missing.unresolved == {"MMoE_LLM4MSR"} and "not built here" in missing.report()
    # run() builds it first, then hashes, runs and records under the concrete choice
    table = fresh.run()
    assert not fresh.unresolved and "| MMoE_LLM4MSR | 0.01 |" in table
    kept = [os.path.join(root, "norm-choice.json") for root, _, files in os.walk(tmp_path / "kc")
            if "norm-choice.json" in files]
    assert len(kept) == 1
    fresh_choice = json.load(open(kept[0]))["chosen"]
    row = next(r for r in rows(str(tmp_path / "fresh" / "runs.csv")) if r["model"] == "MMoE_LLM4MSR")
    assert row["status"] == "ok" and row["config_hash"] != unresolved
    assert row["config_hash"] == digest(**settings, knowledge_norm=fresh_choice)
    result = json.load(open(tmp_path / "fresh" / "runs" / row["result_file"]))
    assert json.dumps(result).count(f'"knowledge_norm": "{fresh_choice}"') >= 1  # the results file names it


def test_verdict_power_gives_the_t_tests_level_the_smallest_passing_mean_and_the_seeds_needed():
    """benchmarks/verdict_power.py: the power function is the test's size at no effect and matches a simulation,
    the smallest passing mean is exactly where a paired t-test's p reaches the level, the seeds needed are the first
    with 80% power, and bad levels are refused."""
    import numpy as np
    from scipy.stats import ttest_1samp

    from benchmarks.verdict_power import pair_row, power, seeds_needed, smallest_passing_mean, test_level

    assert test_level(54, 8) == pytest.approx(0.05 * 8 / 54)
    with pytest.raises(ValueError, match="--passing 9: between 1 and --tests 8"):
        test_level(8, 9)
    assert power(0.0, 0.003, 5, 0.05) == pytest.approx(0.05, abs=1e-9)  # no effect: the test's size
    rng = np.random.default_rng(0)
    draws = rng.normal(0.002, 0.003, size=(4000, 5))
    simulated = np.mean(ttest_1samp(draws, 0.0, axis=1).pvalue < 0.05)
    assert abs(power(0.002, 0.003, 5, 0.05) - simulated) < 0.03
    m = smallest_passing_mean(0.003, 3, 0.0074)
    d = m + 0.003 * np.array([-1.0, 0.0, 1.0])  # mean m, sd 0.003
    assert ttest_1samp(d, 0.0).pvalue == pytest.approx(0.0074, rel=1e-6)
    n = seeds_needed(0.004, 0.003, 0.0074)
    assert power(0.004, 0.003, n, 0.0074) >= 0.8 > power(0.004, 0.003, n - 1, 0.0074)
    assert seeds_needed(-0.001, 0.003, 0.05) is None and seeds_needed(1e-6, 0.003, 0.0074) is None
    row = pair_row("d", "a vs b", {1: 0.70, 2: 0.71, 3: 0.72}, {1: 0.69, 2: 0.69, 3: 0.70, 4: 0.5}, 54, 8, 3)
    assert row["seeds"] == 3 and row["mean_difference"] == pytest.approx(0.0167, abs=1e-4)
    assert row["seeds_for_80_power"] == seeds_needed(0.05 / 3, float(np.std([0.01, 0.02, 0.02], ddof=1)),
                                                     test_level(54, 8))
    below = pair_row("d", "b vs a", {1: 0.69, 2: 0.69}, {1: 0.70, 2: 0.71}, 54, 8, 3)
    assert below["seeds_for_80_power"] == "–"
    with pytest.raises(ValueError, match="1 seed"):
        pair_row("d", "x", {1: 0.7}, {1: 0.6}, 54, 8, 3)


def test_verdict_power_reads_folders_and_keeps_other_datasets_rows(tmp_path, monkeypatch):
    """The CLI reads two labels as cross_compare.py does and merges its rows into the CSV by dataset."""
    from benchmarks.verdict_power import main as power_main
    from recbole_llm4msr.compare import FIELDS

    path = tmp_path / "f"
    path.mkdir()
    with open(path / "runs.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS, restval="")
        w.writeheader()
        for model, aucs in (("A", (0.780, 0.784, 0.786)), ("B", (0.775, 0.776, 0.781))):
            for seed, auc in zip((2020, 2021, 2022), aucs):
                w.writerow({"model": model, "phase": "seeds", "seed": seed, "learning_rate": "0.01", "status": "ok",
                            "config_hash": "aaaaaaaaaaaa", "test_auc": auc})
    monkeypatch.setattr(Comparison, "_check_models", lambda self: None)  # made-up labels / settings
    monkeypatch.setattr(Comparison, "config_hashes", lambda self, label, seed, lr: ("aaaaaaaaaaaa",))
    out = str(tmp_path / "power.csv")
    argv = ["--seeds=3", "--entry", f"a={path}|0.01|A", "--entry", f"b={path}|0.01|B", "--pair", "a,b", "--out", out]
    power_main(["--dataset=one"] + argv)
    rows = power_main(["--dataset=two"] + argv)
    assert rows[0]["mean_difference"] == pytest.approx(0.006, abs=1e-4) and rows[0]["seeds"] == 3
    assert [r["dataset"] for r in csv.DictReader(open(out))] == ["one", "two"]
    assert "| two | a vs b | 3 | +0.0060 (+0.77%) |" in open(out[:-4] + ".md").read()
    with pytest.raises(SystemExit, match="--passing 0"):
        power_main(["--dataset=one", "--passing=0"] + argv)


def test_verdict_power_pools_a_pair_family_over_backbones(tmp_path):
    """Pairs that differ only in their backbone (the first word) are one family: each backbone's mean difference over
    the first ``at`` seeds and over all, tested across backbones; a pair alone in its family is not pooled; the
    Markdown gains the pooled table with a BH column."""
    import numpy as np
    from scipy.stats import ttest_1samp, wilcoxon

    from benchmarks.verdict_power import family, pooled_rows, write

    assert family("STAR profile vs STAR profile shuffled") == "X profile vs X profile shuffled"
    diffs = {"A k vs A": {1: 0.010, 2: 0.000, 3: 0.002, 4: -0.008},
             "B k vs B": {1: 0.004, 2: 0.006, 3: 0.002, 4: 0.020},
             "C k vs C": {1: -0.001, 2: 0.001, 3: 0.003, 4: 0.001},
             "lonely vs other": {1: 0.5, 2: 0.5}}
    rows = pooled_rows("d", diffs, at=3)
    assert [(r["family"], r["seeds"]) for r in rows] == [("X k vs X", "3 (3)"), ("X k vs X", "all (4)")]
    first3 = np.array([0.004, 0.004, 0.001])
    every = np.array([0.001, 0.008, 0.001])
    assert rows[0]["mean_difference"] == pytest.approx(first3.mean(), abs=1e-4) and rows[0]["positive"] == 3
    assert rows[0]["t_p"] == pytest.approx(ttest_1samp(first3, 0.0).pvalue, abs=1e-4)
    assert rows[1]["t_p"] == pytest.approx(ttest_1samp(every, 0.0).pvalue, abs=1e-4)
    assert rows[1]["wilcoxon_p"] == pytest.approx(wilcoxon(every).pvalue, abs=1e-4)
    assert [r["seeds"] for r in pooled_rows("d", diffs, at=4)] == ["4 (4)"]  # no second row when none has more
    path = str(tmp_path / "p.csv")
    write(path, [], rows)
    text = open(path[:-4] + ".md").read()
    assert "| d | X k vs X | 3 | 3 (3) | 3 |" in text and "corrected" in text
    assert len(list(csv.DictReader(open(path[:-4] + "-pooled.csv")))) == 2


def test_activity_auc_scores_the_harness_runs_test_rows_and_compares_them_by_user_activity(data_dir, store, tmp_path,
                                                                                          workdir, monkeypatch):
    """benchmarks/activity_auc.py: each (label, seed) is trained as llm4msr-compare trains it (its config hash), its
    test scores kept and reused; per activity third and overall, LLM4MSR against plain and its [shuffle] control:
    seed-averaged AUCs, their difference with a bootstrap interval, corrected p; bad --entry / --seeds refused."""
    import numpy as np
    from sklearn.metrics import roc_auc_score

    import benchmarks.activity_auc as aa

    out = str(tmp_path / "aa")
    labels = ["MMoE", "MMoE_LLM4MSR", "MMoE_LLM4MSR[shuffle]"]
    args = ["--dataset", "ml-100k-msr", "--data_path", data_dir, "--seeds", "2020,2021", "--epochs", "1",
            "--resamples", "50", "--out", out, "--set", f"knowledge_store={store}"]
    args += [a for k, v in TINY.items() for a in ("--set", f"{k}={v}")]
    args += [a for label in labels for a in ("--entry", f"{label}|0.01")]
    rows = aa.main(args)
    harness = Comparison("ml-100k-msr", labels, 2, [0.01], str(tmp_path / "h"), epochs=1, data_path=data_dir,
                         extra=dict(TINY, knowledge_store=store))
    for label in labels:
        for seed in (2020, 2021):
            run = dict(np.load(aa.run_file(out, label, seed)))
            assert str(run["config_hash"]) == harness.config_hash(label, seed, 0.01)
            assert abs(float(run["test_auc"]) - roc_auc_score(run["label"], run["score"])) < 1e-3
            assert str(run["machine"]) == machine()[0]  # where it ran, described as llm4msr-compare does
    with open(os.path.join(out, "machines.json")) as f:
        assert json.load(f) == dict([machine()])
    assert {(r["label"], r["baseline"]) for r in rows} == {("MMoE_LLM4MSR", "MMoE"),
                                                          ("MMoE_LLM4MSR", "MMoE_LLM4MSR[shuffle]")}
    for baseline in ("MMoE", "MMoE_LLM4MSR[shuffle]"):
        mine = [r for r in rows if r["baseline"] == baseline]
        assert [r["group"][:6] for r in mine] == ["all", "1 of 3", "2 of 3", "3 of 3"]
        assert sum(r["rows"] for r in mine[1:]) == mine[0]["rows"] and sum(r["users"] for r in mine[1:]) == mine[0]["users"]
        for r in mine:
            assert abs(r["difference"] - (r["auc"] - r["baseline_auc"])) <= 2e-4 and r["p_bh"] >= r["p_bootstrap"]
    assert "| all |" in open(os.path.join(out, "table.md")).read()
    monkeypatch.setattr(aa, "test_scores", lambda *a: pytest.fail("a kept run was trained again"))
    assert aa.main(args) == rows  # every run reused from runs/
    y = np.array([0, 1, 0, 1, 1, 0])
    same = aa.seed_mean_difference(y, [np.arange(6.0)], [np.arange(6.0)], np.array(list("aabbcc")), n_boot=20)
    assert same["difference"] == 0 and same["ci95"] == [0.0, 0.0]
    # the seeds are drawn too: seeds that disagree give the interval of auc_difference's two-level bootstrap
    from recbole_llm4msr.knowledge.report import auc_difference
    rng = np.random.default_rng(0)
    who = np.repeat(np.arange(60), 4)
    y = rng.integers(0, 2, len(who))
    good, bad, fair = y + rng.normal(0, 0.5, len(y)), -y + rng.normal(0, 0.5, len(y)), rng.normal(0, 1, len(y))
    drawn = aa.seed_mean_difference(y, [good, bad], [fair, fair], who, n_boot=100)
    assert drawn["ci95"] == auc_difference(y, [good, bad], [fair, fair], who, 100, paired_lists=True)["ci95"]
    assert drawn["ci95"][1] - drawn["ci95"][0] > 0.5  # one seed far above, the other far below
    for bad, match in ((["--entry", "MMoE"], "write LABEL\\|RATE"), (["--seeds", "2020"], "at least two seeds")):
        with pytest.raises(SystemExit, match=match):
            aa.main(args + bad)
    with pytest.raises(SystemExit, match="an LLM4MSR label with its plain backbone"):
        aa.main(["--out", out, "--entry", "MMoE|0.01", "--entry", "DeepFM|0.01"])


def test_an_unknown_model_or_setting_fails_before_any_run_naming_it(data_dir, tmp_path, caplog):
    """RecBole takes any key silently: a misspelt setting would run the defaults under a label that says otherwise
    (and a misspelt model would fill runs.csv with error rows). Both fail at once, naming the label and the key."""
    out = tmp_path / "never"

    def make(models, **extra):
        return Comparison("ml-100k-msr", models, seeds=1, lr_grid=[0.01], out=str(out), epochs=1,
                          data_path=data_dir, extra=extra)

    with pytest.raises(ValueError, match=r"label 'STRA_LLM4MSR'.*Unknown model 'STRA_LLM4MSR'"):
        make(["STAR", "STRA_LLM4MSR"])
    with pytest.raises(ValueError, match=r"label 'STAR_LLM4MSR\[knowledge_nrom=whiten\]': unknown setting "
                                         r"'knowledge_nrom' \(did you mean knowledge_norm"):
        make(["STAR_LLM4MSR[knowledge_nrom=whiten]"])
    # a --set key no property file names is an error; one that only other models read is a warning (a folder's
    # labels are often run one per process with the folder's --set: meta_rank beside the plain backbone)
    with pytest.raises(ValueError, match=r"--set: unknown setting 'embeding_size' \(did you mean embedding_size"
                                         r".*--config_files"):
        make(["STAR"], embeding_size=8)
    assert not out.exists()  # nothing was made
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        make(["STAR", "MMoE"], meta_rank=8)
    assert "--set meta_rank: no label of this comparison reads it (STAR, MMoE); their runs ignore it" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        make(["STAR", "STAR_LLM4MSR"], meta_rank=8)
    assert "--set" not in caplog.text
    # known: a key of one label's model, the knowledge store's options, RecBole's own keys, a label's own setting
    make(["STAR", "STAR_LLM4MSR[meta_rank=4]"], meta_rank=8, llm="minilm", knowledge_store="/s", train_batch_size=64)
    make(["SASRec_TSLRec"], tslrec_k=4)
    # a setting no property file names goes through a config file, which is not checked
    extra_yaml = tmp_path / "extra.yaml"
    extra_yaml.write_text("my_own_setting: 1\n")
    Comparison("ml-100k-msr", ["STAR"], seeds=1, lr_grid=[0.01], out=str(out), epochs=1, data_path=data_dir,
               config_files=[str(extra_yaml)], extra={"my_own_setting": 2})


def test_a_bad_value_fails_before_any_run_naming_the_label_and_the_key(data_dir, tmp_path):
    """A known setting with a bad value used to become an error row of every run (each run failed at its model
    build); the model classes' own checks now stop the comparison first, naming the label, the --set values and
    the key."""
    out = tmp_path / "never"

    def make(models, **extra):
        return Comparison("ml-100k-msr", models, seeds=1, lr_grid=[0.01], out=str(out), epochs=1,
                          data_path=data_dir, extra=extra)

    with pytest.raises(ValueError, match=r"^--models: label 'MMoE\[expert_num=0\]': expert_num must be in \[1, inf\], "
                                         r"not 0$"):
        make(["MMoE", "MMoE[expert_num=0]"])
    # a --set value: the first label that reads it is named (the plain STAR does not read meta_rank)
    with pytest.raises(ValueError, match=r"^--models: label 'STAR_LLM4MSR' with --set meta_rank=-1: meta_rank must "
                                         r"be in \[0, inf\], not -1$"):
        make(["STAR", "STAR_LLM4MSR"], meta_rank=-1)
    with pytest.raises(ValueError, match=r"knowledge_norm must be one of none, standardize, whiten, auto, not 'l2'"):
        make(["STAR_LLM4MSR[knowledge_norm=l2]"])
    with pytest.raises(ValueError, match=r"meta_generator 'factored' needs meta_rank > 0"):
        make(["MMoE_DN[meta_generator=factored;meta_rank=0]"])
    with pytest.raises(ValueError, match=r"llm_mode / --mode must be one of"):  # the knowledge store's own options
        make(["MMoE_LLM4MSR[llm_mode=chat]"])
    with pytest.raises(ValueError, match=r"label 'PLE_EP\[ep_hidden_size=\[8\]\]': ep_hidden_size must be an integer"):
        make(["PLE_EP[ep_hidden_size=[8]]"])
    # TSLRec: the variant's settings and the pipeline's, before the pipeline pre-trains anything
    with pytest.raises(ValueError, match=r"label 'SASRec_TSLRec\[tslrec_k=1\]': k \(tslrec_k / --k\) must be an integer "
                                         r"of at least 2, not 1"):
        make(["SASRec_TSLRec[tslrec_k=1]"])
    with pytest.raises(ValueError, match=r"tslrec_fusion must be one of add, init, not 'concat'"):
        make(["SASRec_TSLRec[tslrec_fusion=concat]"])
    # RecBole's own settings, for every model (stock ones too): the empty batch used to fail in every run
    with pytest.raises(ValueError, match=r"^--models: label 'DeepFM\[train_batch_size=0\]': train_batch_size must be "
                                         r"in \[1, inf\], not 0$"):
        make(["DeepFM[train_batch_size=0]"])
    with pytest.raises(ValueError, match=r"label 'MMoE_LLM4MSR' with --set learning_rate=0: learning_rate must be in "
                                         r"\(0, inf\), not 0"):
        make(["MMoE_LLM4MSR"], learning_rate=0)
    with pytest.raises(ValueError, match=r"label 'WideDeep\[epochs=2.5\]': epochs must be an integer, not 2.5"):
        make(["WideDeep[epochs=2.5]"])
    with pytest.raises(ValueError, match=r"knowledge_norm: auto chooses LLM4MSR's user vectors"):
        make(["GRU4Rec_TSLRec[knowledge_norm=auto]"])
    assert not out.exists()  # nothing was made
    make(["STAR", "STAR_LLM4MSR[meta_rank=0;knowledge_norm=whiten]", "DeepFM"], meta_dropout=0.5)  # good values
    make(["SASRec", "SASRec_TSLRec[tslrec_k=4;tslrec_fusion=init]"])


def test_a_report_of_some_labels_of_a_folder_says_what_it_leaves_out(tmp_path, monkeypatch, caplog):
    """One process per label into one folder (as the benchmark scripts run them): each report rewrites table.md
    with its own labels; a warning names the folder's other labels and how to get the whole table."""
    from recbole_llm4msr.compare import FIELDS

    out = tmp_path / "f"
    out.mkdir()
    with open(out / "runs.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS, restval="")
        w.writeheader()
        for model in ("A", "B", "C"):
            for seed, auc in zip((2020, 2021), (0.70, 0.71)):
                w.writerow({"model": model, "phase": "seeds", "seed": seed, "learning_rate": "0.01", "status": "ok",
                            "config_hash": "aaaaaaaaaaaa", "test_auc": auc, "train_s_per_epoch": 1.0, "params": 1})
    monkeypatch.setattr(Comparison, "config_hashes", lambda self, label, seed, lr: ("aaaaaaaaaaaa",))
    monkeypatch.setattr(Comparison, "_check_models", lambda self: None)  # made-up labels, nothing runs
    with caplog.at_level(logging.WARNING):
        table = Comparison("ml-100k-msr", ["A"], seeds=2, lr_grid=[0.01], out=str(out)).report()
    assert "| A |" in table and "| B |" not in table
    assert "runs.csv also holds finished runs of 2 other label(s) (B, C)" in caplog.text
    assert "--report_only with every label" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        Comparison("ml-100k-msr", ["A", "B", "C"], seeds=2, lr_grid=[0.01], out=str(out)).report()
    assert "other label" not in caplog.text


def test_a_cpu_run_on_a_gpu_machine_is_not_described_with_the_gpu(monkeypatch, tmp_path):
    """machines.json names the GPU only for runs that use it: a comparison with use_gpu: False on a GPU machine ran
    on the CPU, and its runs share a digest with the same CPU without a GPU."""
    from types import SimpleNamespace

    import torch

    from recbole_llm4msr.compare import Comparison

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=0: "Pretend GPU")
    gpu_digest, gpu = machine()
    cpu_digest, cpu = machine(gpu=False)
    assert gpu["gpu"] == "Pretend GPU" and cpu["gpu"] is None and gpu_digest != cpu_digest
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert machine() == (cpu_digest, cpu)  # the same CPU, no GPU at all
    # whether a run asks for the GPU: its own settings, then the config files, then RecBole's default
    off = tmp_path / "cpu.yaml"
    off.write_text("use_gpu: False\n")
    assert Comparison.uses_gpu(SimpleNamespace(config_files=[]), {}) is True
    assert Comparison.uses_gpu(SimpleNamespace(config_files=[str(off)]), {}) is False
    assert Comparison.uses_gpu(SimpleNamespace(config_files=[str(off)]), {"use_gpu": True}) is True
    assert Comparison.uses_gpu(SimpleNamespace(config_files=None), {"use_gpu": False}) is False
