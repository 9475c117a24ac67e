"""A store's identity is a fingerprint of what determines its vectors; prepare() builds stores, models never do;
settings reach the prompts; config precedence is the documented one."""
import json
import os
import shutil
import sys

import numpy as np
import pytest
import yaml

from recbole_llm4msr.knowledge.extract import build_knowledge, check_store, plan
from recbole_llm4msr.knowledge.spec import OPTIONS, KnowledgeSpec
from recbole_llm4msr.knowledge.store import KnowledgeStore, StoreError
from tests.conftest import TINY, quick_config
from tests.knowledge_helpers import make_spec, tiny_llm, tiny_model_dir

SMALL = dict(limit_users=12, max_prompt_tokens=4000, chunk_size=8)


@pytest.fixture(scope="module")
def llm():
    return tiny_llm()


@pytest.fixture(scope="module")
def reseeded(tmp_path_factory):
    """ml-100k-msr converted again with another split seed."""
    from dataset_converters import ml100k

    path = tmp_path_factory.mktemp("reseeded")
    ml100k.convert(str(path), seed=2021)
    return str(path)


def test_another_split_seed_gives_another_store_and_refuses_the_old_one(data_dir, reseeded, tmp_path, llm):
    a = build_knowledge(make_spec(data_dir, tmp_path, **SMALL), llm_model=llm, show_progress=False)
    b_spec = make_spec(reseeded, tmp_path, **SMALL)
    assert plan(b_spec, llm).path != a["cache"]
    header = KnowledgeStore(a["cache"]).header
    assert header["fingerprint"]["train_split"] != plan(b_spec, llm).fingerprint["train_split"]
    with pytest.raises(StoreError, match="the training split .*changed since it was built"):
        check_store(a["cache"], b_spec)
    assert check_store(a["cache"], make_spec(data_dir, tmp_path, **SMALL)).path == a["cache"]  # same data: fine


def test_an_edited_description_gives_another_store(data_dir, tmp_path, llm):
    mine = tmp_path / "mine.yaml"
    mine.write_text(yaml.safe_dump({"scenario_descriptions": {"young": "students who binge sci-fi"}}))
    base = make_spec(data_dir, tmp_path, **SMALL)
    edited = make_spec(data_dir, tmp_path, config_files=[str(mine)], **SMALL)
    assert plan(base, llm).path != plan(edited, llm).path
    built = build_knowledge(base, llm_model=llm, show_progress=False)["cache"]
    with pytest.raises(StoreError, match="the scenario descriptions changed"):
        check_store(built, edited)


def test_swapped_weights_in_the_same_folder_give_another_store(data_dir, tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    model_dir = tiny_model_dir(folder, seed=0)
    spec = make_spec(data_dir, tmp_path, llm=str(model_dir), **SMALL)
    first = plan(spec)
    tiny_model_dir(folder, seed=1)  # same path, other weights
    second = plan(spec)
    assert first.fingerprint["llm"] != second.fingerprint["llm"] and first.path != second.path
    assert os.path.basename(first.path).split("-")[:-1] == os.path.basename(second.path).split("-")[:-1]


def test_dtype_mode_and_prompt_settings_are_part_of_the_key(data_dir, tmp_path):
    model_dir = tiny_model_dir(tmp_path)
    paths = {plan(make_spec(data_dir, tmp_path, llm=str(model_dir), **kw)).path
             for kw in ({}, {"dtype": "float32"}, {"dtype": "bfloat16"}, {"mode": "generate"},
                        {"max_items_per_scenario": 3}, {"limit_users": 5})}
    assert len(paths) >= 5  # auto is float32 or bfloat16 depending on the CPU: one of the first three may coincide
    fp = plan(make_spec(data_dir, tmp_path, llm=str(model_dir), dtype="bfloat16")).fingerprint
    assert fp["dtype"] == "bfloat16" and fp["mode"] == "prompt" and fp["pooling"] == "last"


def test_the_header_records_every_part(data_dir, tmp_path, llm):
    store = KnowledgeStore(build_knowledge(make_spec(data_dir, tmp_path, **SMALL), llm_model=llm,
                                           show_progress=False)["cache"])
    assert set(store.fingerprint) >= {"train_split", "item_texts", "scenario_descriptions", "fields", "prompts", "llm",
                                      "mode", "pooling", "dtype"}
    assert store.header["format"] == 2 and store.kinds == ["scenario", "user"]


def test_a_store_from_an_older_version_is_refused(data_dir, tmp_path, llm):
    path = build_knowledge(make_spec(data_dir, tmp_path, **SMALL), llm_model=llm, show_progress=False)["cache"]
    header_file = os.path.join(path, "header.json")
    with open(header_file) as f:
        header = json.load(f)
    for key in ("format", "fingerprint", "kinds"):
        header.pop(key)
    with open(header_file, "w") as f:
        json.dump(header, f)
    with pytest.raises(StoreError, match="older version of recbole-llm4msr.*delete it and rebuild"):
        KnowledgeStore(path)


def test_float16_overflow_stores_float32(data_dir, tmp_path, llm, monkeypatch):
    real = llm.encode

    def loud(prompts, *a, **k):
        vecs, texts = real(prompts, *a, **k)
        vecs[:, 0] = 1e6  # beyond float16's 65504
        return vecs, texts

    monkeypatch.setattr(llm, "encode", loud)
    store = KnowledgeStore(build_knowledge(make_spec(data_dir, tmp_path, **SMALL), llm_model=llm,
                                           show_progress=False)["cache"])
    vecs = store.vectors("user")
    assert vecs.dtype == np.float32 and store.header["dtype"] == "float32" and float(vecs[0, 0]) == 1e6


# ---------------------------------------------------------------------------------------------- the spec
def test_spec_from_config_and_from_args_agree(data_dir):
    from recbole_llm4msr.config import MultiScenarioConfig
    from recbole_llm4msr.knowledge.cli import build_parser, spec_from_args

    config = MultiScenarioConfig(model="MMoE_LLM4MSR", dataset="ml-100k-msr", config_dict={
        "data_path": data_dir, "llm": "smollm2", "llm_mode": "generate", "prompt_max_tokens": 500, "llm_batch_size": 4})
    a = KnowledgeSpec.from_config(config)
    b = spec_from_args(build_parser().parse_args(["--dataset=ml-100k-msr", f"--data_path={data_dir}",
                                                  "--llm=smollm2", "--mode=generate", "--max_prompt_tokens=500", "--batch_size=4"]))
    assert a == b and a.settings == b.settings
    assert a.settings["scenario_descriptions"]["young"].startswith("MovieLens users younger than 25")
    assert a.settings["item_text_fields"] == ["movie_title", "class"]
    defaults = KnowledgeSpec.defaults()
    assert set(defaults) == {o.name for o in OPTIONS} and defaults["llm"] == "minilm" and defaults["mode"] is None
    # an unset mode follows the llm: the embedded sentence encoder encodes, any other model reads prompts
    assert KnowledgeSpec(dataset="x").mode == "encoder"
    assert KnowledgeSpec(dataset="x", llm="smollm2").mode == "prompt"
    assert KnowledgeSpec(dataset="x", llm="/models/qwen").mode == "prompt"
    assert KnowledgeSpec(dataset="x", llm="smollm2", mode="generate").mode == "generate"
    with pytest.raises(ValueError, match="'minilm' .* needs llm_mode: encoder"):
        KnowledgeSpec(dataset="x", mode="prompt")
    with pytest.raises(ValueError, match="llm_mode / --mode must be one of"):
        KnowledgeSpec(dataset="x", mode="chat")


def test_knowledge_defaults_live_in_one_place():
    """properties/ does not repeat the KnowledgeSpec defaults (a second default could silently disagree)."""
    from recbole_llm4msr.settings import properties_dir

    keys = {o.config_key for o in OPTIONS}
    for path in properties_dir().rglob("*.yaml"):
        with open(path) as f:
            assert not keys & set(yaml.safe_load(f) or {}), path


# ---------------------------------------------------------------------------------------------- prepare
def test_models_never_build_a_store(data_dir, store, workdir):
    from recbole.data import data_preparation

    from recbole_llm4msr.config import MultiScenarioConfig
    from recbole_llm4msr.registry import create_dataset, get_model

    config = MultiScenarioConfig(model="MMoE_LLM4MSR", dataset="ml-100k-msr",
                                 config_dict={"data_path": data_dir, "state": "WARNING", **TINY})
    train, _, _ = data_preparation(config, create_dataset(config))
    with pytest.raises(ValueError, match="models never build one: call recbole_llm4msr.prepare.prepare"):
        get_model("MMoE_LLM4MSR")(config, train._dataset)


def test_run_recbole_passes_config_files_and_dataset_keys_to_the_prompts(data_dir, tmp_path, workdir):
    from recbole_llm4msr.quick_start import run_recbole

    model_dir = tiny_model_dir(tmp_path)
    mine = tmp_path / "mine.yaml"
    mine.write_text(yaml.safe_dump({"scenario_descriptions": {"young": "ZEBRA students who binge sci-fi"},
                                    "item_text_fields": ["movie_title"]}))
    result = run_recbole(model="MMoE_LLM4MSR", dataset="ml-100k-msr", config_file_list=[str(mine)],
                         config_dict=quick_config(data_dir, llm=str(model_dir), knowledge_limit_users=15,
                                                  knowledge_user_vector="prompt",
                                                  prompt_max_tokens=4000, knowledge_cache_dir=str(tmp_path / "kc"),
                                                  show_progress=False, **TINY))
    config = result["results"]["config"]
    store = KnowledgeStore(config["knowledge_store"])
    assert store.path.startswith(str(tmp_path / "kc"))
    texts = store.texts()
    assert "ZEBRA students who binge sci-fi" in texts[("scenario", "young")]["prompt"]
    assert "ZEBRA students" in texts[("user", store.ids("user")[0])]["prompt"]
    titles_only = make_spec(data_dir, config_files=[str(mine)])
    assert store.fingerprint["item_texts"] == item_texts_digest(titles_only) != item_texts_digest(make_spec(data_dir))
    assert config["llm_mode"] == "prompt" and config["knowledge_limit_users"] == 15  # resolved settings recorded


def test_the_default_knowledge_is_the_embedded_sentence_encoder(data_dir, tmp_path, workdir):
    """What `run_recbole --model=MMoE_LLM4MSR` builds with no knowledge setting: all-MiniLM-L6-v2 in encoder mode on
    each item's text, a user's vector the mean of the vectors of the user's training positives (the README's 'Which
    knowledge is the default')."""
    from recbole_llm4msr.knowledge.files import DatasetFiles
    from recbole_llm4msr.knowledge.spec import KnowledgeSpec
    from recbole_llm4msr.quick_start import run_recbole

    result = run_recbole(model="MMoE_LLM4MSR", dataset="ml-100k-msr",
                         config_dict=quick_config(data_dir, knowledge_limit_users=12,
                                                  knowledge_cache_dir=str(tmp_path / "kc"), show_progress=False,
                                                  **TINY))
    config = result["results"]["config"]
    assert config["llm"] == "minilm" and config["llm_mode"] == "encoder"
    assert config["knowledge_user_vector"] == "items" and config["llm_pooling"] == "mean"
    store = KnowledgeStore(config["knowledge_store"])
    assert store.header["model"] == "all-MiniLM-L6-v2" and store.dim == 384 and len(store.ids("user")) == 12
    assert store.kinds == ["scenario", "item", "user"] and store.fingerprint["user_vector"] == "items"
    # the item vectors come from the item texts themselves (no template), for the positives of those 12 users only
    files = DatasetFiles.from_spec(KnowledgeSpec.from_config(config))
    item_text = files.item_texts()
    texts = store.texts()
    assert all(texts[("item", i)]["prompt"] == item_text[i] for i in store.ids("item"))
    train = files.train_interactions()
    positives = train[(train["label"] > 0.5) & train["user"].isin(store.ids("user"))]
    assert sorted(store.ids("item")) == sorted(set(positives["item"].astype(str)))
    # each user: the mean of the item vectors of the user's training positives
    items = np.asarray(store.vectors("item"), np.float32)
    row = {t: n for n, t in enumerate(store.ids("item"))}
    for user in store.ids("user")[:3]:
        mine = positives[positives["user"] == user]["item"].astype(str)
        expected = items[[row[i] for i in mine]].mean(0)
        np.testing.assert_allclose(store.vector("user", user), expected, rtol=1e-3, atol=1e-4)


def item_texts_digest(spec):
    from recbole_llm4msr.knowledge.extract import data_fingerprint
    from recbole_llm4msr.knowledge.files import DatasetFiles
    from recbole_llm4msr.knowledge.prompts import PromptBuilder

    files = DatasetFiles.from_spec(spec)
    return data_fingerprint(files, PromptBuilder(files))["item_texts"]


def test_distributed_runs_prepare_once_before_the_ranks(data_dir, tmp_path, workdir, monkeypatch):
    from recbole_llm4msr import quick_start

    model_dir = tiny_model_dir(tmp_path)
    extra = quick_start.prepare_distributed("MMoE_LLM4MSR", "ml-100k-msr", None, quick_config(
        data_dir, llm=str(model_dir), knowledge_limit_users=10, prompt_max_tokens=4000,
        knowledge_cache_dir=str(tmp_path / "kc")))
    assert KnowledgeStore(extra["knowledge_store"]).kinds == ["scenario", "item", "user"]
    assert os.path.isdir(workdir / "log" / "MMoE_LLM4MSR")


# ---------------------------------------------------------------------------------------------- precedence
LAYERS = ["overall", "enhancement", "backbone", "variant", "dataset", "converter", "config_files", "config_dict",
          "command_line"]


def test_config_precedence_is_the_documented_one(data_dir, tmp_path, monkeypatch, workdir):
    """Layer i sets keys probe_i .. probe_8; key probe_i must end up with layer i's value."""
    from recbole_llm4msr import settings
    from recbole_llm4msr.config import MultiScenarioConfig

    props = tmp_path / "properties"
    shutil.copytree(settings.properties_dir(), props)
    data = tmp_path / "data"
    shutil.copytree(os.path.join(data_dir, "ml-100k-msr"), data / "ml-100k-msr")

    def values(layer):
        i = LAYERS.index(layer)
        return {f"probe_{j}": f"layer:{layer}" for j in range(i, len(LAYERS))}  # (RecBole evals plain names)

    def add(path, layer):
        current = yaml.safe_load(path.read_text()) if path.is_file() else {}
        path.write_text(yaml.safe_dump({**(current or {}), **values(layer)}))

    add(props / "overall.yaml", "overall")
    add(props / "enhancement" / "llm4msr.yaml", "enhancement")
    add(props / "model" / "MMoE.yaml", "backbone")
    add(props / "model" / "MMoE_LLM4MSR.yaml", "variant")
    add(props / "dataset" / "ml-100k-msr.yaml", "dataset")
    add(data / "ml-100k-msr" / "ml-100k-msr.yaml", "converter")
    user = tmp_path / "user.yaml"
    add(user, "config_files")
    monkeypatch.setattr(settings, "properties_dir", lambda: props)
    monkeypatch.setattr(sys, "argv", ["run_recbole", "--probe_8=layer:command_line"])
    config = MultiScenarioConfig(model="MMoE_LLM4MSR", dataset="ml-100k-msr", config_file_list=[str(user)],
                                 config_dict={"data_path": str(data), **values("config_dict")})
    assert [config[f"probe_{i}"] for i in range(len(LAYERS))] == [f"layer:{x}" for x in LAYERS]
