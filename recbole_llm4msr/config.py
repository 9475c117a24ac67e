"""A RecBole ``Config`` that knows this package's models and ``properties/``.

Precedence, lowest to highest (RecBole's own files first, exactly as RecBole loads them):

1. RecBole's ``overall.yaml``, its model YAML (stock models), its dataset YAML, its context-aware quick-start YAML;
2. our ``properties/overall.yaml`` (CTR defaults for multi-scenario data; only for context-aware models);
3. our ``properties/model/<model>.yaml``;
4. our ``properties/dataset/<dataset>.yaml``;
5. the converter-written ``<data_path>/<dataset>/<dataset>.yaml`` (present for every converted dataset);
6. the user's config files, then ``config_dict``, then the command line (RecBole's external config).
"""
import os
from pathlib import Path

from recbole.config import Config
from recbole.utils import ModelType

from recbole_llm4msr.data.builtin import ensure_builtin
from recbole_llm4msr.registry import get_model


def properties_dir():
    """``properties/`` at the repository root (source / editable install) or inside the installed package."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "properties", here / "properties"):
        if (candidate / "overall.yaml").is_file():
            return candidate
    raise FileNotFoundError(f"recbole-llm4msr: properties/overall.yaml not found next to {here}; reinstall the package")


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
        props = properties_dir()
        files = []
        if self.internal_config_dict["MODEL_TYPE"] == ModelType.CONTEXT:
            files.append(props / "overall.yaml")
        backbone = getattr(model_class, "backbone_name", None)  # MMoE_LLM4MSR -> MMoE.yaml, then its own file
        if backbone:
            files.append(props / "model" / f"{backbone}.yaml")
        files.append(props / "model" / f"{model}.yaml")
        enhancement = self._enhancement(model, model_class)
        if enhancement != "none":
            files.append(props / "enhancement" / f"{enhancement}.yaml")
        dataset_files = [props / "dataset" / f"{dataset}.yaml"]
        data_path = self.external_config_dict.get("data_path", self.internal_config_dict.get("data_path", "dataset/"))
        # Built-in datasets are converted now, so that their converter-written YAML (load_col ...) is read below.
        ensure_builtin(dataset, data_path)
        dataset_files.append(Path(data_path) / dataset / f"{dataset}.yaml")
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
