"""A store's identity: a fingerprint of everything that determines its vectors, never a folder name.

Parts (each a short digest, all recorded in the store's header):

==========================  ==========================================================================
``train_split``             the bytes of ``<dataset>.train.inter`` (another split seed -> another store)
``item_texts``              the item texts exactly as rendered into prompts
``scenario_descriptions``   the descriptions from the dataset's YAML / ``--config_files``
``fields``                  the field names read and the dataset's positive rule (threshold or label > 0.5)
``prompts``                 the templates and the prompt settings (items per scenario, token budget)
``llm``                     the LLM's files by content (config, tokenizer, weights; see :func:`llm_identity`)
``mode``, ``pooling``,      how a prompt becomes a vector; ``dtype`` is the resolved one (``auto`` is
``dtype``,                  bf16 on some CPUs and fp32 on others), ``max_new_tokens`` only in generate mode
``max_new_tokens``,
``limit_users``
==========================  ==========================================================================

:data:`DATA_PARTS` are the parts that tie a store to a dataset: a store given explicitly (``knowledge_store``)
must match them, otherwise :func:`changed_parts` names what differs.
"""
import hashlib
import json
import os

FINGERPRINT_VERSION = 1
DATA_PARTS = ("train_split", "item_texts", "scenario_descriptions", "fields")
CONTENT_HASH_LIMIT = 2 << 30  # LLM files up to 2 GiB in total are hashed by content; above, by size + mtime

_memo = {}


def text_digest(obj):
    """Digest of a JSON-able object (sorted keys)."""
    payload = json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def file_digest(path, chunk=1 << 20):
    """sha256 of a file's bytes (remembered per path, size and modification time within a process)."""
    st = os.stat(path)
    key = (os.path.realpath(path), st.st_size, st.st_mtime_ns)
    if key not in _memo:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(chunk), b""):
                h.update(block)
        _memo[key] = h.hexdigest()[:16]
    return _memo[key]


def llm_identity(directory, gguf_file=None):
    """Identity of an LLM on disk: the files of its directory (or the one GGUF file) by content; when they exceed
    :data:`CONTENT_HASH_LIMIT` in total, weight files by name, size and modification time (a swapped weight file
    changes both) and the small files (config, tokenizer) still by content. Returns ``(digest, method)``."""
    if gguf_file is not None:
        files = [os.path.join(directory, gguf_file)]
    else:
        files = sorted(os.path.join(directory, f) for f in os.listdir(directory)
                       if not f.startswith(".") and os.path.isfile(os.path.join(directory, f)))
    total = sum(os.path.getsize(f) for f in files)
    method = "content" if total <= CONTENT_HASH_LIMIT else "stat"
    parts = []
    for f in files:
        size = os.path.getsize(f)
        if method == "content" or size < (16 << 20):
            parts.append((os.path.basename(f), file_digest(f)))
        else:
            parts.append((os.path.basename(f), size, os.stat(f).st_mtime_ns))
    return text_digest(parts), method


def module_identity(model):
    """Identity of an in-memory torch model (tests, notebooks): its config and every tensor's bytes."""
    import torch

    h = hashlib.sha256()
    config = getattr(model, "config", None)
    if config is not None and hasattr(config, "to_json_string"):
        h.update(config.to_json_string().encode("utf-8"))
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode("utf-8"))
        h.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def store_key(parts):
    """The folder key of a store: one digest of all parts."""
    return text_digest({"version": FINGERPRINT_VERSION, **parts})


def changed_parts(recorded, current, names=DATA_PARTS):
    """The parts among ``names`` whose digests differ between a store's header and the current data."""
    return [n for n in names if (recorded or {}).get(n) != current.get(n)]
