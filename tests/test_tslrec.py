"""TSLRec: pipeline (pre-train, cluster, SFT, item store) and the _TSLRec variants of RecBole's sequential models,
end to end on a tiny sequential dataset with a tiny random LLM (seconds)."""
import json
import os

import numpy as np
import pytest
import torch

from recbole_llm4msr.align.finetune import LoraSettings
from recbole_llm4msr.knowledge.store import KnowledgeStore, StoreError
from recbole_llm4msr.tslrec.pipeline import run
from recbole_llm4msr.tslrec.settings import TSLRecError, TSLRecSettings
from recbole_llm4msr.tslrec.samples import (
    category_distribution,
    parse_distribution,
    percents,
    render_distribution,
    sft_samples,
)
from tests.conftest import quick_config, shared_file
from tests.knowledge_helpers import tiny_model_dir
from tests.seq_helpers import TINY_SASREC, write_toy_sequences


def settings(base, llm, **kw):
    values = dict(dataset="toyseq", data_path=str(base / "data"), k=4, llm=str(llm), out=str(base / "out"),
                  max_users=None, pretrain_epochs=2, pretrain_config=dict(TINY_SASREC, state="WARNING"),
                  lora=LoraSettings(batch_size=8, max_length=256))
    values.update(kw)
    return TSLRecSettings(**values)


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    base = tmp_path_factory.mktemp("tslrec")
    write_toy_sequences(str(base / "data"))
    llm = tiny_model_dir(base, seed=0)
    summary = run(settings(base, llm), show_progress=False)
    return base, llm, summary


def full_sequences(folder, name="toyseq"):
    seqs = {}
    with open(os.path.join(folder, f"{name}.inter")) as f:
        next(f)
        for line in f:
            u, i, t = line.rstrip("\n").split("\t")
            seqs.setdefault(u, []).append((float(t), i))
    return {u: [i for _, i in sorted(v)] for u, v in seqs.items()}


def test_sft_targets_are_distributions_of_training_sequences_only(toy):
    base, _, summary = toy
    with open(os.path.join(summary["out"], "pretrain.json")) as f:
        sequences = json.load(f)["sequences"]
    full = full_sequences(base / "data" / "toyseq")
    assert set(sequences) == set(full)
    for user, seq in sequences.items():
        assert seq == full[user][:-2]  # RecBole's leave-one-out: the last two items are validation and test
    with open(os.path.join(summary["out"], "categories.json")) as f:
        categories = json.load(f)
    samples = [json.loads(line) for line in open(os.path.join(summary["out"], "samples.jsonl"))]
    assert len(samples) == len(sequences)
    for s in samples:
        target = np.array(s["target"])
        assert target.shape == (4,) and (target >= 0).all() and abs(target.sum() - 1) < 1e-5
        expected = np.bincount([categories[i] for i in sequences[s["user"]]], minlength=4) / len(sequences[s["user"]])
        assert np.allclose(target, expected, atol=1e-6)
        assert np.abs(parse_distribution(s["answer"], 4) - target).max() <= 0.01
        groups = ("red", "green", "blue", "amber")
        shown = sequences[s["user"]][-10:]  # the latest training items only, oldest first
        expected_lines = [f"- {groups[int(i[1:]) // 10]} widget {int(i[1:]) % 10} [C{categories[i]}]" for i in shown]
        assert s["prompt"].split("\n")[1:-1] == expected_lines


def test_distribution_text_is_a_valid_distribution():
    cats = {"a": 0, "b": 1, "c": 1, "d": 2}
    dist = category_distribution(["a", "b", "c", "d", "c", "b"], cats, 3)
    assert np.allclose(dist, [1 / 6, 4 / 6, 1 / 6])
    assert percents(dist).sum() == 100 and list(percents(dist)) == [17, 66, 17]
    assert render_distribution(dist) == "C1: 66%, C0: 17%, C2: 17%"
    assert percents([1 / 3] * 3).sum() == 100
    out = sft_samples({"u1": ["a", "b"], "u2": ["d"], "u3": []}, {k: k.upper() for k in cats}, cats, 3, max_history=1)
    assert [u for u, *_ in out] == ["u1", "u2"]  # a user without a training item has no sample
    assert out[0][1].endswith("- B [C1]\nWhat share of this user's items falls in each latent category?")
    assert out[0][2] == "C0: 50%, C1: 50%"
    with pytest.raises(ValueError, match="empty"):
        category_distribution([], cats, 3)


def test_the_pipeline_writes_a_fingerprinted_item_store_and_is_reused(toy):
    base, llm, summary = toy
    store = KnowledgeStore(summary["store"])
    assert store.kinds == ["item"] and len(store.ids("item")) == 40
    assert store.header["with_categories"] and store.fingerprint["categories"]
    manifest = json.load(open(os.path.join(summary["out"], "model", "manifest.json")))
    assert manifest["task"] == "tslrec-sft" and manifest["samples"] == 60
    again = run(settings(base, llm), show_progress=False)
    assert again["store"] == summary["store"]
    with pytest.raises(TSLRecError, match="other settings"):
        run(settings(base, llm, k=3), show_progress=False)
    raw = run(settings(base, llm, sft=False, out=str(base / "raw")), show_progress=False)
    raw_store = KnowledgeStore(raw["store"])
    assert raw_store.fingerprint["llm"] != store.fingerprint["llm"]  # the base LLM, not the fine-tuned one
    assert not raw_store.header["with_categories"]


def test_the_aligned_model_ablation_is_a_local_model_directory(toy, tmp_path):
    """The alignment's output (a merged LoRA model directory with a manifest) is what tslrec_llm / --llm takes for
    the "aligned model" ablation, with and without the SFT stage; its stores are kept apart from the base LLM's."""
    from recbole_llm4msr.align.finetune import finetune, load_for_training, save_model
    from recbole_llm4msr.knowledge.llm import file_identity

    base, llm, summary = toy
    name, tokenizer, model = load_for_training(str(llm))
    pairs = [(f"Which item comes next after red thing {k}?", f"red thing {k + 1}") for k in range(8)]
    merged, history = finetune(model, tokenizer, pairs, str(tmp_path / "aligned"),
                               LoraSettings(batch_size=8, max_length=64, learning_rate=1e-2), progress=False)
    aligned = save_model(merged, tokenizer, str(tmp_path / "aligned"), {"task": "align", "steps": history["steps"]})
    raw_aligned = run(settings(base, aligned, sft=False, out=str(tmp_path / "raw-aligned")), show_progress=False)
    raw_base = run(settings(base, llm, sft=False, out=str(base / "raw")), show_progress=False)  # the base LLM's
    # raw store, shared with the pipeline test (reused when that test built it)
    a, b = KnowledgeStore(raw_aligned["store"]), KnowledgeStore(raw_base["store"])
    assert a.fingerprint["llm"] == file_identity(aligned) != b.fingerprint["llm"]
    assert a.ids("item") == b.ids("item")
    assert not np.allclose(np.asarray(a.vectors("item")), np.asarray(b.vectors("item")))
    sft_aligned = run(settings(base, aligned, out=str(tmp_path / "sft-aligned")), show_progress=False)
    manifest = json.load(open(os.path.join(sft_aligned["out"], "model", "manifest.json")))
    assert manifest["base_identity"] == file_identity(aligned) != file_identity(llm)
    assert KnowledgeStore(sft_aligned["store"]).fingerprint["llm"] != KnowledgeStore(summary["store"]).fingerprint["llm"]


def run_model(workdir, base, model, **extra):
    from recbole_llm4msr.quick_start import run_recbole

    config = quick_config(str(base / "data"), **TINY_SASREC, **extra)
    return run_recbole(model=model, dataset="toyseq", config_dict=config)


@pytest.mark.parametrize("model", ["SASRec_TSLRec", "GRU4Rec_TSLRec"])
def test_models_train_rank_and_reload(toy, workdir, model):
    from recbole_llm4msr.quick_start import load_data_and_model

    base, _, summary = toy
    result = run_model(workdir, base, model, knowledge_store=summary["store"])
    assert "ndcg@10" in result["test_result"] and result["valid_score_bigger"]
    config, net, dataset, _, _, test_data = load_data_and_model(result["checkpoint"])
    net.eval()
    batch = next(iter(test_data))[0]
    with torch.no_grad():
        first = net.full_sort_predict(batch)
    _, again, *_ = load_data_and_model(result["checkpoint"])
    again.eval()
    with torch.no_grad():
        assert torch.allclose(first, again.full_sort_predict(batch))
    emb = net.item_embedding
    assert emb.weight.shape == (dataset.item_num, net.item_embedding.embedding_dim)
    # aligned to RecBole's ids: row i is the (standardised) vector of the item whose token is field2id_token[i]
    store = KnowledgeStore(summary["store"])
    raw = np.asarray(store.vectors("item"), dtype=np.float32)
    mean, std = raw.mean(0), np.maximum(raw.std(0), 1e-5)
    tokens = dataset.field2id_token[dataset.iid_field]
    for i in (1, 7, len(tokens) - 1):
        expected = (raw[store.row("item", tokens[i])] - mean) / std
        assert np.allclose(emb.knowledge.table[i].numpy(), expected, atol=1e-3)
    assert not emb.knowledge.has[0] and torch.equal(emb(torch.tensor([0])), emb.id_embedding(torch.tensor([0])))


def build_model(base, model, **extra):
    from recbole.data import data_preparation

    from recbole_llm4msr.config import MultiScenarioConfig
    from recbole_llm4msr.registry import create_dataset, get_model

    config = MultiScenarioConfig(model=model, dataset="toyseq",
                                 config_dict=quick_config(str(base / "data"), **TINY_SASREC, **extra))
    dataset = create_dataset(config)
    train, _, _ = data_preparation(config, dataset)
    return get_model(model)(config, train._dataset), train._dataset


def test_controls_and_the_init_only_fusion(toy, workdir):
    base, _, summary = toy
    real, dataset = build_model(base, "SASRec_TSLRec", knowledge_store=summary["store"])
    shuffled, _ = build_model(base, "SASRec_TSLRec", knowledge_store=summary["store"], knowledge_control="shuffle")
    zero, _ = build_model(base, "SASRec_TSLRec", knowledge_store=summary["store"], knowledge_control="zero")
    a, b = real.item_embedding.knowledge.table[1:], shuffled.item_embedding.knowledge.table[1:]
    assert not any(torch.equal(a[i], b[i]) for i in range(len(a)))  # nobody keeps their own vector
    assert torch.allclose(a.sum(0), b.sum(0), atol=1e-3)  # the same set of vectors
    assert not zero.item_embedding.knowledge.has.any()
    n_params = sum(p.numel() for p in real.parameters())
    assert n_params == sum(p.numel() for p in shuffled.parameters()) == sum(p.numel() for p in zero.parameters())
    init, _ = build_model(base, "SASRec_TSLRec", knowledge_store=summary["store"], tslrec_fusion="init")
    stock, _ = build_model(base, "SASRec")
    assert isinstance(init.item_embedding, torch.nn.Embedding)
    assert sum(p.numel() for p in init.parameters()) == sum(p.numel() for p in stock.parameters())
    w = init.item_embedding.weight.detach().numpy()[1:]
    assert abs(float(w.std()) - 0.02) < 0.01 and not np.allclose(w, stock.item_embedding.weight.detach().numpy()[1:])
    with pytest.raises(ValueError, match="tslrec_fusion"):
        build_model(base, "SASRec_TSLRec", knowledge_store=summary["store"], tslrec_fusion="concat")
    # auto (LLM4MSR's default, chosen for user vectors) is not an item normalisation: said, not guessed
    with pytest.raises(ValueError, match="TSLRec's item vectors take none, standardize"):
        build_model(base, "SASRec_TSLRec", knowledge_store=summary["store"], knowledge_norm="auto")


def test_any_sequential_model_gets_a_variant_and_others_are_refused():
    from recbole_llm4msr.registry import get_model

    narm = get_model("NARM_TSLRec")
    assert narm.__name__ == "NARM_TSLRec" and narm.backbone_name == "NARM"
    with pytest.raises(ValueError, match="not one"):
        get_model("DeepFM_TSLRec")


def test_run_recbole_without_a_store_runs_the_pipeline(toy, workdir):
    base, llm, _ = toy
    result = run_model(workdir, base, "SASRec_TSLRec", tslrec_llm=str(llm), tslrec_k=3, tslrec_max_users=16,
                       tslrec_pretrain_epochs=1, tslrec_dir=str(base / "auto"))
    with open(base / "auto" / "tslrec.json") as f:
        summary = json.load(f)
    assert summary["categories"]["k"] == 3 and summary["sft"]["samples"] == 16
    assert "ndcg@10" in result["test_result"]
    # the pipeline has its own seed: every training seed of a comparison reads the same store
    from recbole_llm4msr.config import MultiScenarioConfig
    from recbole_llm4msr.tslrec.pipeline import default_out

    def settings_for(seed, **extra):
        config = MultiScenarioConfig(model="SASRec_TSLRec", dataset="toyseq", config_dict=quick_config(
            str(base / "data"), seed=seed, tslrec_k=3, tslrec_pretrain_config={"hidden_size": 8}, **extra))
        return TSLRecSettings.from_config(config)

    assert default_out(settings_for(1)) == default_out(settings_for(2))
    assert settings_for(1).pretrain_config == {"hidden_size": 8} and settings_for(1).seed == 2020
    # the pipeline runs on the run's device unless tslrec_device says otherwise; neither moves the store
    assert settings_for(1).device == "cpu"
    moved = settings_for(1, tslrec_device="cuda:1", tslrec_extract_batch_size=256)
    assert moved.device == "cuda:1" and moved.extract_batch_size == 256
    assert default_out(moved) == default_out(settings_for(1))


def test_errors_name_the_problem(toy, tmp_path, workdir):
    base, llm, summary = toy
    with pytest.raises(TSLRecError, match="--k 41"):
        run(settings(base, llm, k=41, out=str(tmp_path / "k")), show_progress=False)
    write_toy_sequences(str(tmp_path / "d1"), with_time=False)
    with pytest.raises(TSLRecError, match="order column"):
        run(settings(base, llm, data_path=str(tmp_path / "d1"), out=str(tmp_path / "t")), show_progress=False)
    write_toy_sequences(str(tmp_path / "d2"), with_text=False)
    with pytest.raises(TSLRecError, match="allow_id_text"):
        run(settings(base, llm, data_path=str(tmp_path / "d2"), out=str(tmp_path / "x"), sft=False),
            show_progress=False)
    ok = run(settings(base, llm, data_path=str(tmp_path / "d2"), out=str(tmp_path / "y"), sft=False,
                      allow_id_text=True), show_progress=False)
    assert "item i0" in open(os.path.join(ok["store"], "texts.jsonl")).read()
    # a store of another dataset, or without item vectors
    from recbole_llm4msr.knowledge.items import check_item_store

    with pytest.raises(StoreError, match="built for dataset 'toyseq', not 'other'"):
        check_item_store(summary["store"], "other")
    with pytest.raises(StoreError, match="another LLM"):
        check_item_store(summary["store"], "toyseq", llm_identity="0123")
    texts = {str(i): f"changed {i}" for i in KnowledgeStore(summary["store"]).ids("item")}
    with pytest.raises(StoreError, match="items"):
        check_item_store(summary["store"], "toyseq", items=list(texts), texts=texts)


def test_msr_store_is_refused_as_an_item_store(store, toy, workdir):
    base, _, _ = toy
    with pytest.raises(StoreError):
        run_model(workdir, base, "SASRec_TSLRec", knowledge_store=store)


def test_sequential_views_of_the_builtin_datasets(tmp_path):
    from recbole_llm4msr.config import MultiScenarioConfig

    config = MultiScenarioConfig(model="SASRec", dataset="ml-100k", config_dict={"data_path": str(tmp_path)})
    assert config["eval_args"]["split"] == {"LS": "valid_and_test"} and config["eval_args"]["order"] == "TO"
    assert config["valid_metric"] == "NDCG@10" and config["train_neg_sample_args"]["distribution"] == "none"
    assert os.path.isfile(tmp_path / "ml-100k" / "ml-100k.inter")  # copied from the recbole package, no download
    assert config["item_text_fields"] == ["movie_title", "release_year", "class"]
    ctr = MultiScenarioConfig(model="DeepFM", dataset="ml-100k-msr", config_dict={"data_path": str(tmp_path)})
    assert ctr["eval_args"]["mode"] in ("labeled", {"valid": "labeled", "test": "labeled"})


def test_amazon_art_office_loads_as_a_sequential_dataset(tmp_path):
    from recbole_llm4msr.config import MultiScenarioConfig
    from recbole_llm4msr.registry import create_dataset

    shared_file("amazon_art_office.csv")
    from dataset_converters import amazon_art_office

    amazon_art_office.convert(str(tmp_path))
    config = MultiScenarioConfig(model="SASRec", dataset="amazon-art-office",
                                 config_dict={"data_path": str(tmp_path), "state": "WARNING"})
    assert config["benchmark_filename"] is None and config["eval_args"]["split"] == {"LS": "valid_and_test"}
    dataset = create_dataset(config)
    assert dataset.user_num - 1 == 9577
    labels = dataset.inter_feat[config["LABEL_FIELD"]]
    assert (labels == 1).all()  # the CTR view's sampled negatives are not interactions
    assert len(dataset.inter_feat) == 206661
    # what the README and the dataset YAML say about the leave-one-out split of this data: the test item (each user's
    # last) is an Arts item for 99.3% of users (every user in the raw file; repeated purchases are dropped), the
    # validation item (second-last) an Office item for 95%
    import pandas as pd

    inter = pd.read_csv(tmp_path / "amazon-art-office" / "amazon-art-office.inter", sep="\t")
    inter.columns = [c.split(":")[0] for c in inter.columns]
    inter = inter[inter["label"] == 1].sort_values(["user_id", "timestamp"])
    by_user = inter.groupby("user_id")["scenario"]
    assert (by_user.nth(-1) == "arts").sum() == 9513
    assert (by_user.nth(-2) == "office").mean() > 0.95


def test_compare_reports_ranking_metrics_with_controls(toy, tmp_path, workdir):
    from recbole_llm4msr.compare import Comparison, family

    base, _, summary = toy
    assert family("SASRec_TSLRec[shuffle]") == ("SASRec", "tslrec[shuffle]")
    labels = ["SASRec", "SASRec_TSLRec", "SASRec_TSLRec[shuffle]"]
    out = tmp_path / "cmp"
    comparison = Comparison("toyseq", labels, seeds=2, lr_grid=[0.01], out=str(out), epochs=1,
                            data_path=str(base / "data"), extra=dict(TINY_SASREC, knowledge_store=summary["store"]),
                            metric="ndcg@10")
    table = comparison.run()
    header = next(x for x in table.splitlines() if x.startswith("| model |"))
    assert header.startswith("| model | lr | ndcg@10 |") and "recall@20" in header and "mrr@10" in header
    line = next(x for x in table.splitlines() if x.startswith("| SASRec_TSLRec |"))
    assert "[shuffle] " in line
    import csv

    tests = list(csv.DictReader(open(out / "tests.csv")))
    assert {(t["relation"], t["column"]) for t in tests} >= {("vs shuffle control", "test_ndcg@10"),
                                                            ("vs plain backbone", "test_recall@10")}
    assert (out / "ndcg10.png").is_file()
    runs = list(csv.DictReader(open(out / "runs.csv")))
    assert all(r["status"] == "ok" and r["valid_ndcg@10"] for r in runs)
    # sequential runs are timed like CTR runs (RecBole's own trainer, through TrainerFixes)
    assert all(float(r["train_s_per_epoch"]) > 0 and int(r["epochs"]) == 1 for r in runs)
    with pytest.raises(ValueError, match="--metric"):
        Comparison("toyseq", labels, seeds=1, lr_grid=[0.01], out=str(out), metric="ndcg")


def test_item_text_cap_keeps_the_title_first_and_changes_the_store(toy, tmp_path):
    from recbole_llm4msr.knowledge.files import DatasetFiles

    folder = tmp_path / "capped"
    folder.mkdir()
    (folder / "capped.item").write_text("item_id:token\ttitle:token_seq\tcategories:token_seq\n"
                                        "a\tred pencil set\tarts crafts drawing pencils\n"
                                        "b\tstapler\toffice products staplers\n")
    files = DatasetFiles("capped", str(folder), {"item_text_fields": ["title", "categories"]})
    assert files.item_texts()["a"] == "red pencil set (arts, crafts, drawing, pencils)"
    capped = files.item_texts(max_words=5)
    assert capped == {"a": "red pencil set (arts, crafts)", "b": "stapler (office, products, staplers)"}
    assert files.item_texts(max_words=2)["a"] == "red pencil"  # the title first; no room left for details
    with pytest.raises(ValueError, match="at least 1"):
        files.item_texts(max_words=0)

    base, llm, _ = toy
    full = run(settings(base, llm, sft=False, out=str(base / "raw")), show_progress=False)
    short = run(settings(base, llm, sft=False, out=str(base / "raw-capped"), item_text_words=2), show_progress=False)
    assert short["example_prompt"] == "Item: red widget" and full["example_prompt"].startswith("Item: red widget ")
    assert "item_text_words" not in full["settings"] and short["settings"]["item_text_words"] == 2
    assert KnowledgeStore(short["store"]).fingerprint["items"] != KnowledgeStore(full["store"]).fingerprint["items"]
    with pytest.raises(TSLRecError, match=r"item_text_words \(tslrec_item_text_words / --item_text_words\) must be "
                                          r"an integer of at least 1, not 0; leave it unset for the full text"):
        run(settings(base, llm, sft=False, out=str(base / "raw-bad"), item_text_words=0), show_progress=False)


def test_pipeline_settings_are_checked_when_made_before_any_stage(tmp_path):
    """A value the pipeline could only reject late (k at the clustering, after pre-training; the pooling at the item
    extraction) or took silently (tslrec_k: 0 became 32) is an error when the settings are made, naming the field,
    its config key and option."""
    ok = TSLRecSettings(dataset="d")
    assert ok.k == 32 and ok.max_users == 400
    for field, value, message in (("k", 1, r"k \(tslrec_k / --k\) must be an integer of at least 2, not 1"),
                                  ("max_history", 0, r"max_history .* at least 1, not 0"),
                                  ("pretrain_epochs", "3", r"pretrain_epochs .* not '3'"),
                                  ("max_users", -5, r"max_users .* at least 1, not -5; leave it unset for every user"),
                                  ("pooling", "max", r"pooling \(tslrec_pooling / --pooling\) must be one of mean, "
                                                     r"last, not 'max'"),
                                  ("pretrain_config", [1], r"pretrain_config .* must be a mapping")):
        with pytest.raises(TSLRecError, match=message):
            TSLRecSettings(dataset="d", **{field: value})
    # from a run's config: read strictly, 0 is not "unset"
    config = {key: None for key in ("tslrec_max_users", "tslrec_device", "device", "tslrec_extract_batch_size",
                                    "tslrec_backbone", "tslrec_k", "tslrec_llm", "tslrec_dir", "tslrec_sft",
                                    "tslrec_max_history", "tslrec_pretrain_epochs", "tslrec_pooling", "tslrec_seed",
                                    "tslrec_allow_id_text", "tslrec_item_text_words", "tslrec_pretrain_config",
                                    "tslrec_sft_epochs", "tslrec_max_length")}
    config.update(dataset="d", data_path=str(tmp_path / "d"))
    made = TSLRecSettings.from_config(config)
    assert (made.k, made.max_users, made.lora.epochs, made.seed) == (32, None, 1, 2020)
    with pytest.raises(TSLRecError, match=r"k \(tslrec_k / --k\) must be an integer of at least 2, not 0"):
        TSLRecSettings.from_config(dict(config, tslrec_k=0))
    with pytest.raises(TSLRecError, match=r"tslrec_sft_epochs must be an integer, not 'many'"):
        TSLRecSettings.from_config(dict(config, tslrec_sft_epochs="many"))
    with pytest.raises(TSLRecError, match=r"LoRA epochs must be an integer of at least 1, not 0"):
        TSLRecSettings.from_config(dict(config, tslrec_sft_epochs=0))
    assert TSLRecSettings.from_config(dict(config, tslrec_max_users=0)).max_users is None  # 0: every user, as before


def test_the_cli_set_names_a_misspelt_pretraining_setting(tmp_path):
    """llm4msr-tslrec --set KEY=VALUE goes to the backbone's pre-training config, which would take a misspelt key
    silently: it is an error naming the key and the nearest known names; known keys pass."""
    from recbole_llm4msr.tslrec.cli import build_parser, settings_from_args

    write_toy_sequences(str(tmp_path / "data"))

    def parse(*sets):
        args = build_parser().parse_args(["--dataset=toyseq", f"--data_path={tmp_path / 'data'}"]
                                         + [f"--set={s}" for s in sets])
        return settings_from_args(args)

    assert parse("MAX_ITEM_LIST_LENGTH=20", "hidden_size=8").pretrain_config == {"MAX_ITEM_LIST_LENGTH": 20,
                                                                                 "hidden_size": 8}
    with pytest.raises(ValueError, match=r"--set: unknown setting 'hiden_size' \(did you mean hidden_size"):
        parse("hiden_size=8")
    with pytest.raises(TSLRecError, match="expected KEY=VALUE"):
        parse("hidden_size")
