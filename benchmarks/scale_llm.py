"""A randomly initialised causal LM of a real model's shape (Qwen2 0.5B / 1.5B / 7B), saved as a local model
directory with a real tokenizer (the embedded SmolLM2's by default): what ``llm4msr-align --llm=DIR`` and
``llm4msr-knowledge --llm=DIR`` cost with a larger model, measured where no such model can be downloaded (a GPU lease
has no network). Its outputs are noise: it measures time and memory, never quality.

    python benchmarks/scale_llm.py --shape qwen2-0.5b --out DIR [--tokenizer smollm2|DIR] [--device cuda]

``DIR/scale_llm.json`` says what it is (shape, parameter count, random weights, seed).
"""
import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

# the published configurations' sizes (the vocabulary is the tokenizer's)
SHAPES = {
    "qwen2-0.5b": dict(hidden_size=896, num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2,
                       intermediate_size=4864, tie_word_embeddings=True),
    "qwen2-1.5b": dict(hidden_size=1536, num_hidden_layers=28, num_attention_heads=12, num_key_value_heads=2,
                       intermediate_size=8960, tie_word_embeddings=True),
    "qwen2-7b": dict(hidden_size=3584, num_hidden_layers=28, num_attention_heads=28, num_key_value_heads=4,
                     intermediate_size=18944, tie_word_embeddings=False),
    "tiny": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                 intermediate_size=64, tie_word_embeddings=True),  # for tests
}


def load_tokenizer(spec):
    from transformers import AutoTokenizer

    from recbole_llm4msr.knowledge.llm import resolve_llm

    _, directory, gguf = resolve_llm(spec)
    return AutoTokenizer.from_pretrained(directory, **({"gguf_file": gguf} if gguf else {}))


def build(shape, out, tokenizer="smollm2", device="cpu", seed=0):
    """Write the random model of ``shape`` with ``tokenizer`` to ``out``. -> its description (scale_llm.json)."""
    import torch
    from transformers import AutoModelForCausalLM, Qwen2Config

    if shape not in SHAPES:
        raise ValueError(f"--shape must be one of {', '.join(SHAPES)}, not '{shape}'")
    start = time.perf_counter()
    tok = load_tokenizer(tokenizer)
    config = Qwen2Config(vocab_size=len(tok), bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id, **SHAPES[shape])
    torch.manual_seed(seed)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    params = sum(p.numel() for p in model.parameters())
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    about = {"shape": shape, "parameters": params, "random_weights": True, "seed": seed, "tokenizer": str(tokenizer),
             "vocab_size": len(tok), "seconds": round(time.perf_counter() - start, 1),
             "note": "cost measurements only: the weights are random, every quality number from it is noise"}
    with open(os.path.join(out, "scale_llm.json"), "w") as f:
        json.dump(about, f, indent=2)
    return about


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shape", required=True, choices=sorted(SHAPES))
    p.add_argument("--out", required=True)
    p.add_argument("--tokenizer", default="smollm2", help="'smollm2' (the embedded GGUF's) or a model directory")
    p.add_argument("--device", default="cpu", help="where the random weights are drawn (cuda: fast for 7B)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    print(json.dumps(build(args.shape, args.out, args.tokenizer, args.device, args.seed)))


if __name__ == "__main__":
    main()
