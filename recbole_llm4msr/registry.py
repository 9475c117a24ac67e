"""Name -> model class / trainer class / dataset, resolving this package first and RecBole second.

RecBole's own ``get_model`` imports ``exlib_recommender`` (lightgbm, xgboost) for any name it does not know, so an
unknown name ends in ``ModuleNotFoundError: lightgbm``. We look names up ourselves and fail with the list of names
that exist.
"""
import importlib
import inspect

from recbole.utils import ModelType

from recbole_llm4msr.compat import anomaly_mode_kept, recbole_deprecations_quiet

# Stock RecBole model families searched after ours, in RecBole's order. exlib (XGBoost, LightGBM) is only tried
# for its own two names, so that an unknown name never imports lightgbm.
_RECBOLE_SUBMODULES = (
    "general_recommender",
    "context_aware_recommender",
    "sequential_recommender",
    "knowledge_aware_recommender",
)
_RECBOLE_EXLIB = {"xgboost": "XGBoost", "lightgbm": "LightGBM"}

# name -> class for models registered from outside this package (see register_model); ours come from
# recbole_llm4msr.model.MODELS, which knows nothing of this module (arrows point one way).
_EXTRA_MODELS = {}


def register_model(cls, name=None):
    """Make another package's ``cls`` resolvable by ``name`` (default: the class name). Usable as a decorator."""
    _EXTRA_MODELS[name or cls.__name__] = cls
    return cls


def _our_models():
    from recbole_llm4msr.model import MODELS

    return {**MODELS, **_EXTRA_MODELS}


def our_model_names():
    return sorted(_our_models())


def recbole_model_names():
    """Names of every stock RecBole model (without importing exlib's optional dependencies)."""
    from recbole.model.abstract_recommender import AbstractRecommender

    names = set()
    for sub in _RECBOLE_SUBMODULES:
        with anomaly_mode_kept():  # sequential_recommender imports SINE
            module = importlib.import_module(f"recbole.model.{sub}")
        for name, obj in vars(module).items():
            if inspect.isclass(obj) and issubclass(obj, AbstractRecommender):
                names.add(name)
    names.update(_RECBOLE_EXLIB.values())
    return sorted(names)


def get_model(model_name):
    """Resolve a model name: this package's models first, then RecBole's. Unknown names list the alternatives."""
    if not isinstance(model_name, str):
        return model_name
    ours = _our_models()
    if model_name in ours:
        return ours[model_name]
    if model_name.endswith("_TSLRec"):  # the TSLRec variant of any RecBole sequential model, made on demand
        from recbole_llm4msr.model.tslrec import tslrec_variant

        base = model_name[: -len("_TSLRec")]
        stock = get_model(base)
        if getattr(stock, "type", None) != ModelType.SEQUENTIAL:
            raise ValueError(f"'{model_name}': TSLRec enhances sequential models; {base} is not one")
        _EXTRA_MODELS[model_name] = tslrec_variant(stock)
        return _EXTRA_MODELS[model_name]
    module_name = model_name.lower()
    with anomaly_mode_kept():  # find_spec and import_module import the parent packages (sequential_recommender: SINE)
        for sub in _RECBOLE_SUBMODULES:
            path = f"recbole.model.{sub}.{module_name}"
            if importlib.util.find_spec(path) is not None:
                module = importlib.import_module(path)
                if hasattr(module, model_name):
                    return getattr(module, model_name)
    if module_name in _RECBOLE_EXLIB and model_name == _RECBOLE_EXLIB[module_name]:
        return getattr(importlib.import_module(f"recbole.model.exlib_recommender.{module_name}"), model_name)
    raise ValueError(
        f"Unknown model '{model_name}'. Names are case-sensitive.\n"
        f"  recbole-llm4msr models: {', '.join(our_model_names()) or '(none)'}\n"
        f"  RecBole models: {', '.join(recbole_model_names())}"
    )


def get_trainer(model_type, model_name):
    """Our per-scenario trainer for every context-aware (CTR) model, ours or RecBole's; RecBole's otherwise."""
    if model_type == ModelType.CONTEXT:
        from recbole_llm4msr.trainer import MultiScenarioTrainer

        return MultiScenarioTrainer
    from recbole.utils import get_trainer as recbole_get_trainer

    from recbole_llm4msr.recovery import with_fixes

    return with_fixes(recbole_get_trainer(model_type, model_name))


def create_dataset(config):
    """A :class:`MultiScenarioDataset` for CTR models; RecBole's own dataset class for anything else."""
    from recbole_llm4msr.data.builtin import ensure_dataset

    ensure_dataset(config)
    with recbole_deprecations_quiet():  # RecBole's fillna(inplace=True) / Series.agg(len) under pandas 2.2+ (compat)
        if config["MODEL_TYPE"] == ModelType.CONTEXT:
            from recbole_llm4msr.data.dataset import MultiScenarioDataset

            return MultiScenarioDataset(config)
        from recbole.data import create_dataset as recbole_create_dataset

        return recbole_create_dataset(config)
