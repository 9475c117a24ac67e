"""The TSLRec pipeline's settings (one dataclass), checked when made: what :mod:`recbole_llm4msr.tslrec.pipeline`
runs from, and what a TSLRec model variant checks before any run (it imports this module, not the pipeline, which
builds RecBole configs for its pre-training)."""
import os
from dataclasses import asdict, dataclass, field
from typing import Optional

from recbole_llm4msr.align.finetune import LoraSettings
from recbole_llm4msr.settings import setting_bool, setting_number

POOLINGS = ("mean", "last")  # an item vector: the mean over the item's own tokens, or the last token's state


def _is_count(value, low):
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


class TSLRecError(ValueError):
    """A TSLRec setting or dataset that cannot work; the message names it."""


@dataclass
class TSLRecSettings:
    dataset: str
    data_path: str = "dataset/"
    backbone: str = "SASRec"
    k: int = 32
    llm: str = "smollm2"
    out: Optional[str] = None          # default: default_out()
    sft: bool = True
    max_users: Optional[int] = 400
    max_history: int = 10
    pretrain_epochs: int = 20
    pooling: str = "mean"
    seed: int = 2020
    device: str = "cpu"
    allow_id_text: bool = False
    item_text_words: Optional[int] = None  # at most this many words of item text (SFT prompts and item prompts)
    extract_batch_size: int = 32
    config_files: tuple = ()
    pretrain_config: dict = field(default_factory=dict)  # more RecBole settings for stage 0 (MAX_ITEM_LIST_LENGTH, ...)
    lora: LoraSettings = field(default_factory=LoraSettings)

    # (field, its config key / command-line option, the smallest value, what unset means or None when it must be set):
    # checked when the settings are made, so a bad value stops the run before pre-training (k used to fail only at
    # the clustering, after stage 0)
    _AT_LEAST = (("k", "tslrec_k / --k", 2, None), ("max_history", "tslrec_max_history / --max_history", 1, None),
                 ("pretrain_epochs", "tslrec_pretrain_epochs / --pretrain_epochs", 1, None),
                 ("extract_batch_size", "tslrec_extract_batch_size / --extract_batch_size", 1, None),
                 ("max_users", "tslrec_max_users / --max_users", 1, "every user"),
                 ("item_text_words", "tslrec_item_text_words / --item_text_words", 1, "the full text"))

    def __post_init__(self):
        for name, where, low, unset in self._AT_LEAST:
            value = getattr(self, name)
            if value is None and unset:
                continue
            if not _is_count(value, low):
                raise TSLRecError(f"{name} ({where}) must be an integer of at least {low}, not {value!r}"
                                  + (f"; leave it unset for {unset}" if unset else ""))
        if self.pooling not in POOLINGS:
            raise TSLRecError(f"pooling (tslrec_pooling / --pooling) must be one of {', '.join(POOLINGS)}, not "
                              f"{self.pooling!r}")
        for name in ("epochs", "max_length"):
            if not _is_count(getattr(self.lora, name), 1):
                raise TSLRecError(f"LoRA {name} must be an integer of at least 1, not {getattr(self.lora, name)!r}")
        if not isinstance(self.pretrain_config, dict):
            raise TSLRecError(f"pretrain_config (tslrec_pretrain_config) must be a mapping of RecBole settings, not "
                              f"{self.pretrain_config!r}")

    @classmethod
    def from_config(cls, config):
        """The settings a run's config names (``tslrec_*`` keys, properties/enhancement/tslrec.yaml). The pipeline
        has its own seed (``tslrec_seed``), so every training seed of a comparison reads the same store."""
        def number(key, default, low=None):  # read strictly: 0 is 0 (it used to become the default), "x" an error
            try:
                return setting_number(config, key, int, low=low, default=default)
            except ValueError as exc:
                raise TSLRecError(str(exc)) from None

        users = number("tslrec_max_users", 0, low=0)
        pretrain = config["tslrec_pretrain_config"] or {}
        # the pipeline runs where the run trains unless tslrec_device names another device
        device = str(config["tslrec_device"] or config["device"] or "cpu")
        return cls(device=device, extract_batch_size=number("tslrec_extract_batch_size", 32),
                   dataset=config["dataset"], data_path=os.path.dirname(os.path.normpath(config["data_path"])),
                   backbone=config["tslrec_backbone"] or "SASRec", k=number("tslrec_k", 32),
                   llm=str(config["tslrec_llm"] or "smollm2"), out=config["tslrec_dir"],
                   sft=setting_bool(config, "tslrec_sft", default=True), max_users=users or None,
                   max_history=number("tslrec_max_history", 10),
                   pretrain_epochs=number("tslrec_pretrain_epochs", 20),
                   pooling=str(config["tslrec_pooling"] or "mean").lower(),
                   seed=number("tslrec_seed", 2020),
                   allow_id_text=setting_bool(config, "tslrec_allow_id_text"),
                   item_text_words=None if config["tslrec_item_text_words"] is None
                   else number("tslrec_item_text_words", None),
                   pretrain_config=pretrain if not isinstance(pretrain, dict) else dict(pretrain),
                   lora=LoraSettings(epochs=number("tslrec_sft_epochs", 1),
                                     max_length=number("tslrec_max_length", 384)))

    def identity(self):
        """Everything but where the outputs go and how fast they are made."""
        d = asdict(self)
        for key in ("out", "device", "extract_batch_size", "data_path"):
            d.pop(key)
        d["lora"].pop("save_every")
        if d["item_text_words"] is None:  # the full text: runs made before the cap existed keep their identity
            d.pop("item_text_words")
        return d
