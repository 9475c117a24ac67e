"""The knowledge pipeline's settings: one dataclass, one table of names, the defaults in one place.

:class:`KnowledgeSpec` is everything that decides which knowledge store a run uses. It has exactly two
constructors from the outside world:

* :meth:`KnowledgeSpec.from_config` -- from a RecBole config (``run_recbole``; keys such as ``llm_mode``);
* :meth:`KnowledgeSpec.from_args` -- from ``llm4msr-knowledge``'s arguments (flags such as ``--mode``), whose parser
  :func:`add_arguments` builds from the same table.

Both read the same :data:`OPTIONS` table (field, config key, command-line flag, help); the defaults are the
dataclass's. ``properties/enhancement/llm4msr.yaml`` does not repeat them; the resolved values are written back
into the run's config by ``prepare`` (so they appear in its log, results file and checkpoint).
"""
import os
from dataclasses import dataclass, field, fields
from typing import Optional

MODES = ("prompt", "generate", "encoder")
POOLINGS = ("last", "mean")
USER_VECTORS = ("prompt", "items")

# the dataset settings the prompts depend on (read from the dataset's YAML files or the RecBole config)
DATASET_KEYS = ("USER_ID_FIELD", "ITEM_ID_FIELD", "LABEL_FIELD", "SCENARIO_FIELD", "TIME_FIELD",
                "scenario_descriptions", "item_text_fields", "threshold")
FIELD_DEFAULTS = {"USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id", "LABEL_FIELD": "label",
                  "SCENARIO_FIELD": "scenario", "TIME_FIELD": "timestamp"}


@dataclass(frozen=True)
class Option:
    name: str          # KnowledgeSpec field
    config_key: str    # RecBole config key (run_recbole --<config_key>=...)
    flag: str          # llm4msr-knowledge --<flag>
    help: str


OPTIONS = (
    Option("llm", "llm", "llm", "'minilm' (embedded sentence encoder), 'smollm2' (embedded decoder LLM), a local "
                                "model directory or .gguf file"),
    Option("mode", "llm_mode", "mode", "prompt (last prompt token) | generate (the paper's: answer, then its last "
                                        "token) | encoder (mean-pooled sentence encoder); unset: encoder for minilm, "
                                        "prompt otherwise"),
    Option("user_vector", "knowledge_user_vector", "user_vector",
           "how a user's vector is made: prompt (the paper's: the LLM reads the user-level prompt) | items (the LLM "
           "encodes each item's text once; a user's vector is the mean of the vectors of their training positives)"),
    Option("pooling", "llm_pooling", "pooling", "which hidden states become a decoder's vector: last (the last "
                                                "token, the paper's) | mean (mean over the user's or item's own "
                                                "tokens); unset: last for user prompts, mean for items"),
    Option("batch_size", "llm_batch_size", "batch_size", "prompts per LLM batch"),
    Option("max_new_tokens", "llm_max_new_tokens", "max_new_tokens", "generate mode: answer length"),
    Option("device", "llm_device", "device", "where the LLM runs: cpu, cuda, cuda:1 ..."),
    Option("dtype", "llm_dtype", "dtype", "auto (bf16 on GPUs and on CPUs with native bf16, else fp32), float32, "
                                          "bfloat16, float16; the resolved dtype is part of the store's fingerprint"),
    Option("trust_remote_code", "llm_trust_remote_code", "trust_remote_code", "for models such as ChatGLM2-6B"),
    Option("template_dir", "prompt_template_dir", "template_dir", "folder with your own scenario.txt / user.txt"),
    Option("max_items_per_scenario", "prompt_max_items_per_scenario", "max_items_per_scenario",
           "most recent positives per scenario in a user prompt"),
    Option("max_prompt_tokens", "prompt_max_tokens", "max_prompt_tokens", "oldest items are dropped above this"),
    Option("chunk_size", "knowledge_chunk_size", "chunk_size", "users per saved chunk (the unit of resuming)"),
    Option("limit_users", "knowledge_limit_users", "limit_users", "only the first N users (sorted by token)"),
    Option("cache_dir", "knowledge_cache_dir", "cache_dir",
           "default $RECBOLE_LLM4MSR_CACHE/knowledge or ~/.cache/recbole_llm4msr/knowledge"),
    Option("store", "knowledge_store", "store", "use this finished store (its data fingerprint is checked)"),
)


@dataclass(frozen=True)
class KnowledgeSpec:
    """What determines a knowledge store (plus where to put it and how fast to build it)."""

    dataset: str
    data_path: str = "dataset/"                 # the folder holding <dataset>/
    settings: dict = field(default_factory=dict, hash=False)  # the dataset's settings (DATASET_KEYS)
    llm: str = "minilm"                         # the embedded default (README: "Which knowledge is the default")
    mode: Optional[str] = None                  # None: encoder for 'minilm', prompt for any other llm
    user_vector: Optional[str] = None           # None: items, except generate mode (prompt); README: "Which
                                                # knowledge is the default"
    pooling: Optional[str] = None               # None: last for user prompts, mean for items (and encoders)
    batch_size: int = 16
    max_new_tokens: int = 32
    device: str = "cpu"
    dtype: str = "auto"
    trust_remote_code: bool = False
    template_dir: Optional[str] = None
    max_items_per_scenario: int = 10
    max_prompt_tokens: int = 320
    chunk_size: int = 64
    limit_users: Optional[int] = None
    cache_dir: Optional[str] = None
    store: Optional[str] = None

    def __post_init__(self):
        if self.mode is None:  # frozen: set once, here
            object.__setattr__(self, "mode", default_mode(self.llm))
        if self.mode not in MODES:
            raise ValueError(f"llm_mode / --mode must be one of {', '.join(MODES)}, not '{self.mode}'")
        if self.user_vector is None:  # frozen: resolved once, here
            object.__setattr__(self, "user_vector", "prompt" if self.mode == "generate" else "items")
        if self.user_vector not in USER_VECTORS:
            raise ValueError(f"knowledge_user_vector / --user_vector must be one of {', '.join(USER_VECTORS)}, not "
                             f"'{self.user_vector}'")
        if self.mode == "generate" and self.user_vector == "items":
            raise ValueError("llm_mode generate answers a user-level prompt: it needs knowledge_user_vector: prompt "
                             "(knowledge_user_vector: items encodes item texts, in prompt or encoder mode)")
        if self.pooling is None:  # frozen: resolved once, here
            items_or_encoder = self.user_vector == "items" or self.mode == "encoder"
            object.__setattr__(self, "pooling", "mean" if items_or_encoder else "last")
        if self.pooling not in POOLINGS:
            raise ValueError(f"llm_pooling / --pooling must be one of {', '.join(POOLINGS)}, not '{self.pooling}'")
        if self.mode == "generate" and self.pooling != "last":
            raise ValueError("llm_mode generate keeps the last generated token: use llm_pooling: last")
        if (self.llm == "minilm" and self.mode != "encoder") or (self.mode == "encoder" and self.llm == "smollm2"):
            raise ValueError(f"llm '{self.llm}' with llm_mode '{self.mode}': 'minilm' (a sentence encoder) needs "
                             f"llm_mode: encoder, and llm_mode: encoder needs an encoder (minilm or a local "
                             f"encoder directory), not the decoder 'smollm2'")
        for name in ("batch_size", "max_new_tokens", "max_items_per_scenario", "max_prompt_tokens", "chunk_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"knowledge setting {name} must be a positive integer, not {value!r}")
        if self.limit_users is not None and (not isinstance(self.limit_users, int) or self.limit_users < 1):
            raise ValueError(f"knowledge setting limit_users must be a positive integer or empty, not "
                             f"{self.limit_users!r}")

    # ------------------------------------------------------------------ constructors
    @classmethod
    def defaults(cls):
        return {f.name: f.default for f in fields(cls) if f.name in {o.name for o in OPTIONS}}

    @classmethod
    def from_config(cls, config):
        """From a RecBole config (or any mapping whose ``[key]`` is None for a missing key). ``data_path`` there
        is ``<folder>/<dataset>`` (RecBole joins them); unset keys take the dataclass defaults."""
        values = {}
        for option in OPTIONS:
            value = config[option.config_key]
            if value is not None and value != "":
                values[option.name] = value
        data_path = os.path.dirname(os.path.normpath(str(config["data_path"])))
        settings = _dataset_settings({k: config[k] for k in DATASET_KEYS})
        return cls(dataset=str(config["dataset"]), data_path=data_path, settings=settings, **_typed(values))

    @classmethod
    def from_args(cls, args, settings):
        """From ``llm4msr-knowledge``'s parsed arguments and the dataset's merged YAML settings."""
        values = {o.name: getattr(args, o.name) for o in OPTIONS if getattr(args, o.name, None) is not None}
        settings = _dataset_settings(settings)
        return cls(dataset=args.dataset, data_path=args.data_path, settings=settings, **_typed(values))

    def config_items(self):
        """``{config key: value}`` of every option (to write the resolved settings back into a RecBole config)."""
        return {o.config_key: getattr(self, o.name) for o in OPTIONS}


def default_mode(llm):
    """The extraction mode when none is set: ``encoder`` for the embedded sentence encoder, ``prompt`` otherwise."""
    return "encoder" if str(llm) == "minilm" else "prompt"


def _dataset_settings(source):
    """The dataset keys the prompts read, field names completed with RecBole's defaults."""
    out = dict(FIELD_DEFAULTS)
    out.update({k: source.get(k) for k in DATASET_KEYS if source.get(k) is not None})
    return out


_INTS = {"batch_size", "max_new_tokens", "max_items_per_scenario", "max_prompt_tokens", "chunk_size", "limit_users"}


def _typed(values):
    out = {}
    for name, value in values.items():
        if name in _INTS and isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        elif name in _INTS and isinstance(value, float) and value.is_integer():
            value = int(value)
        elif name == "trust_remote_code" and isinstance(value, str):
            value = value.strip().lower() in ("1", "true", "yes")
        elif name in ("llm", "mode", "user_vector", "pooling", "device", "dtype", "template_dir", "cache_dir", "store"):
            value = str(value)
        out[name] = value
    return out


def add_arguments(parser):
    """The knowledge options as command-line flags (defaults: :class:`KnowledgeSpec`)."""
    defaults = KnowledgeSpec.defaults()
    for option in OPTIONS:
        default = defaults[option.name]
        flags = [f"--{option.flag}"]
        if "_" in option.flag:
            flags.append(f"--{option.flag.replace('_', '-')}")
        if isinstance(default, bool):
            parser.add_argument(*flags, dest=option.name, action="store_true", default=None, help=option.help)
            continue
        kind = int if option.name in _INTS else str
        choices = {"mode": MODES, "pooling": POOLINGS, "user_vector": USER_VECTORS}.get(option.name)
        parser.add_argument(*flags, dest=option.name, type=kind, default=None, choices=choices,
                            help=option.help if default is None else f"{option.help} (default {default})")
    return parser
