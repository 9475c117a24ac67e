"""Tiny randomly initialised transformers models built in code (no download), for fast knowledge tests."""
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from recbole_llm4msr.knowledge.llm import KnowledgeLLM


def byte_tokenizer():
    """A byte-level tokenizer with no merges: every byte is a token (vocabulary 258)."""
    vocab = {"<pad>": 0, "<eos>": 1}
    for ch in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab[ch] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>")


def tiny_causal_lm(seed=0, hidden=32, initializer_range=0.02):
    """A tiny random Llama. With the default init its frozen output head is so small that no adapter can move the
    logits much (fine-tuning tests use initializer_range=0.5)."""
    tokenizer = byte_tokenizer()
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=4096, eos_token_id=1, pad_token_id=0, bos_token_id=None,
                         initializer_range=initializer_range)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).eval()
    return tokenizer, model


def tiny_llm(max_new_tokens=6, seed=0):
    tokenizer, model = tiny_causal_lm(seed)
    return KnowledgeLLM(tokenizer, model, name="tiny-llama", max_new_tokens=max_new_tokens)


def tiny_model_dir(folder, seed=0):
    """The tiny causal LM saved as a local transformers directory (what ``--llm=DIR`` reads); returns its path."""
    tokenizer, model = tiny_causal_lm(seed)
    path = folder / "tiny-llama"
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def make_spec(data_dir, cache_dir=None, dataset="ml-100k-msr", config_files=(), **options):
    """A KnowledgeSpec for a converted dataset in ``data_dir``, with its YAML settings merged as the CLI does."""
    from recbole_llm4msr.knowledge.files import dataset_settings
    from recbole_llm4msr.knowledge.spec import KnowledgeSpec

    settings = dataset_settings(dataset, str(data_dir), config_files)
    options.setdefault("llm", "smollm2")  # the decoder pipeline (tests pass a tiny decoder as llm_model)
    options.setdefault("user_vector", "prompt")  # the user-prompt path; tests of the items path ask for it
    return KnowledgeSpec(dataset=dataset, data_path=str(data_dir), settings=settings,
                         cache_dir=None if cache_dir is None else str(cache_dir), **options)
