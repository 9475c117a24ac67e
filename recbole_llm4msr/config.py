"""A RecBole ``Config`` that knows this package's models and ``properties/``.

Precedence, lowest to highest (each later source overrides the earlier ones):

1. RecBole's defaults (its ``overall.yaml``, model YAML, dataset YAML, context-aware quick-start YAML);
2. our ``properties/overall.yaml`` (CTR defaults for multi-scenario data; only for context-aware models), or
   ``properties/sequential.yaml`` (leave-one-out, full ranking; only for sequential models);
3. ``properties/enhancement/<enhancement>.yaml`` (``llm4msr`` / ``dn`` / ``ep``: the enhancement's defaults);
4. ``properties/model/<Backbone>.yaml`` (``MMoE.yaml`` for ``MMoE_LLM4MSR``);
5. ``properties/model/<Variant>.yaml`` (``MMoE_LLM4MSR.yaml``: may override the enhancement and the backbone);
6. ``properties/dataset/<dataset>.yaml``;
7. the converter-written ``<data_path>/<dataset>/<dataset>.yaml`` (present for every converted dataset), then for
   sequential models ``properties/dataset/<dataset>.sequential.yaml`` (e.g. amazon-art-office: purchases only);
8. the user's ``config_files``, then ``config_dict``, then the command line (RecBole's external config).

The file lists of 2-7 come from :mod:`recbole_llm4msr.settings` (``llm4msr-knowledge`` reads 6-7 and its own
``--config_files`` from there too).
"""
import contextlib
import os

from recbole.config import Config
from recbole.utils import ModelType

from dataset_converters.builtin import ensure_builtin
from recbole_llm4msr.registry import get_model
from recbole_llm4msr.settings import (
    UNLISTED_SETTINGS,
    dataset_yaml_files,
    hidden_command_line,
    model_yaml_files,
    property_file_settings,
    reader,
    setting_count,
    setting_number,
    unknown_settings_error,
)


def recbole_model_yaml(model):
    """RecBole's own ``properties/model/<model>.yaml``, or None (our backbones have theirs in ``properties/``)."""
    import recbole

    path = os.path.join(os.path.dirname(recbole.__file__), "properties", "model", f"{model}.yaml")
    return path if os.path.isfile(path) else None


class MultiScenarioConfig(Config):
    """RecBole Config that resolves our model names and loads our property files (see module docstring)."""

    def _get_model_and_dataset(self, model, dataset):
        if model is None:
            model = self.external_config_dict.get("model")
            if model is None:
                raise KeyError("model must be given: --model=NAME, config_dict, or a config file with 'model: NAME'")
        model_class = get_model(model)
        model_name = model if isinstance(model, str) else model.__name__
        if dataset is None:
            dataset = self.external_config_dict.get("dataset")
            if dataset is None:
                raise KeyError("dataset must be given: --dataset=NAME, config_dict, or a config file")
        return model_name, model_class, dataset

    def _load_internal_config_dict(self, model, model_class, dataset):
        super()._load_internal_config_dict(model, model_class, dataset)
        model_type = self.internal_config_dict["MODEL_TYPE"]
        backbone = getattr(model_class, "backbone_name", None)
        stock = recbole_model_yaml(backbone) if backbone and backbone != model else None
        if stock is not None and not recbole_model_yaml(model):
            self._update_internal_config_dict(stock)  # SASRec_TSLRec: RecBole's SASRec defaults first
        files = model_yaml_files(model, getattr(model_class, "backbone_name", None),
                                 self._enhancement(model, model_class),
                                 context_aware=model_type == ModelType.CONTEXT,
                                 sequential=model_type == ModelType.SEQUENTIAL)
        data_path = self.external_config_dict.get("data_path", self.internal_config_dict.get("data_path", "dataset/"))
        # Built-in datasets are converted now, so that their converter-written YAML (load_col ...) is read below.
        ensure_builtin(dataset, data_path)
        dataset_files = dataset_yaml_files(dataset, data_path, sequential=model_type == ModelType.SEQUENTIAL)
        for file in files + dataset_files:
            if file.is_file():
                loaded = self._update_internal_config_dict(str(file))
                if file in dataset_files and loaded:
                    self.parameters["Dataset"] += [k for k in loaded if k not in self.parameters["Dataset"]]
        if getattr(model_class, "fixed_enhancement", None):
            self.internal_config_dict["enhancement"] = model_class.fixed_enhancement

    def _enhancement(self, model, model_class):
        """The enhancement of this run: fixed by a variant name, else ``enhancement`` (default none)."""
        fixed = getattr(model_class, "fixed_enhancement", None)
        asked = self.external_config_dict.get("enhancement")
        if fixed:
            if asked not in (None, fixed):
                raise ValueError(f"model {model} is the '{fixed}' variant of its backbone; it cannot take "
                                 f"enhancement={asked} (use the backbone name with --enhancement={asked})")
            return fixed
        return str(asked or "none").lower()

    def _init_device(self):
        if "local_rank" not in self.final_config_dict:
            return super()._init_device()
        from recbole_llm4msr.distributed import init_device

        if isinstance(self.final_config_dict["gpu_id"], tuple):
            self.final_config_dict["gpu_id"] = ",".join(map(str, self.final_config_dict["gpu_id"]))
        self.final_config_dict["gpu_id"] = str(self.final_config_dict["gpu_id"])
        if self.final_config_dict.get("use_gpu", True) and self.final_config_dict["gpu_id"]:
            os.environ["CUDA_VISIBLE_DEVICES"] = self.final_config_dict["gpu_id"]  # as RecBole
        init_device(self.final_config_dict)

    def _set_default_parameters(self):
        super()._set_default_parameters()
        # RecBole decides "smaller is better" from a fixed list; per-scenario keys (logloss_<scenario>) are ours.
        metric = str(self.final_config_dict["valid_metric"]).lower()
        if metric.startswith("logloss"):
            self.final_config_dict["valid_metric_bigger"] = False
        elif metric.startswith("auc"):
            self.final_config_dict["valid_metric_bigger"] = True
        self.final_config_dict.setdefault("SCENARIO_FIELD", "scenario")


# ---------------------------------------------------------------------------------------------- known settings
# the settings that decide which property files a config loads: passed on when the known names are looked up
STRUCTURAL_SETTINGS = ("data_path", "enhancement")


def known_settings(model, dataset, given=None, config_files=None):
    """Setting names the config of ``model`` on ``dataset`` knows: its merged config's (RecBole's, the model's, the
    enhancement's and the dataset's property files, ``config_files``), the knowledge store's options (they default
    inside :class:`~recbole_llm4msr.knowledge.spec.KnowledgeSpec`) and :data:`UNLISTED_SETTINGS`. Of the settings
    ``given`` only :data:`STRUCTURAL_SETTINGS` are used (``enhancement: llm4msr`` loads that enhancement's names);
    the command line is hidden while the config is built (its keys are what is being checked)."""
    from recbole_llm4msr.knowledge.spec import DATASET_KEYS, OPTIONS

    structural = {k: v for k, v in (given or {}).items() if k in STRUCTURAL_SETTINGS and v is not None}
    with hidden_command_line():
        config = MultiScenarioConfig(model=model, dataset=dataset, config_file_list=config_files,
                                     config_dict=structural)
    return set(config.final_config_dict) | {o.config_key for o in OPTIONS} | set(DATASET_KEYS) | UNLISTED_SETTINGS


def check_settings(model, dataset, keys, where, given=None, config_files=None):
    """An error for every one of ``keys`` the config of ``model`` on ``dataset`` does not know
    (:func:`known_settings`; ``given`` and ``config_files`` as there), each named by ``where(key)`` with the nearest
    known names, and said to be read by other models or enhancements when a property file names it."""
    known = known_settings(model, dataset, given, config_files)
    unknown = [key for key in keys if key not in known]
    if unknown:
        elsewhere = property_file_settings()  # e.g. meta_rank for a plain backbone (enhancement: llm4msr reads it)
        raise unknown_settings_error([(where(key) + (f" (read by other models or enhancements, not by {model})"
                                                     if key in elsewhere else ""), key, known) for key in unknown])


# RecBole's own settings whose bad values fail deep inside its data loaders or optimiser (``train_batch_size: 0``
# became an error row of every run of a comparison): read by every model, checked with the model's own settings
RECBOLE_SETTING_READERS = {
    "train_batch_size": reader(setting_count),
    "eval_batch_size": reader(setting_count),
    "epochs": reader(setting_number, low=0),
    "learning_rate": reader(setting_number, kind=float, low=0, open_interval=True),
    "weight_decay": reader(setting_number, kind=float, low=0),
    "embedding_size": reader(setting_count),
}


def check_values(model, dataset, given=None, config_files=None, command_line=False):
    """Check the values of the settings ``model`` reads, in its merged config on ``dataset`` (``given`` as
    ``config_dict``, ``config_files``; the command line's ``--key=value`` too with ``command_line``): RecBole's own
    batch sizes, epochs, learning rate, weight decay and embedding size for every model (when set), then the model
    class's ``check_config`` (this package's multi-scenario models: the backbone's and the enhancement's settings).
    Needs no data: a bad value (``train_batch_size: 0``, ``meta_rank: -1``, ``knowledge_norm: l2``) is a ValueError
    naming the key before any data is loaded, any knowledge store built or any run started."""
    hide = contextlib.nullcontext() if command_line else hidden_command_line()
    with hide:
        config = MultiScenarioConfig(model=model, dataset=dataset, config_file_list=config_files,
                                     config_dict=dict(given or {}))
    for key, read in RECBOLE_SETTING_READERS.items():
        if config[key] is not None:
            read(config, key)
    check = getattr(get_model(model), "check_config", None)
    if check is not None:
        check(config)
