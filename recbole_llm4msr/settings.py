"""Where settings come from: ``properties/`` and the one ordered list of YAML files, lowest precedence first.

Precedence, lowest to highest (the same for ``run_recbole`` and ``llm4msr-knowledge``):

1. RecBole's own defaults (its ``overall.yaml``, model YAML, context-aware quick-start YAML);
2. ``properties/overall.yaml`` (context-aware models) or ``properties/sequential.yaml`` (sequential models);
3. ``properties/enhancement/<enhancement>.yaml`` (``llm4msr``, ``dn``, ``ep``);
4. ``properties/model/<Backbone>.yaml`` (``MMoE.yaml`` for ``MMoE_LLM4MSR``);
5. ``properties/model/<Variant>.yaml`` (``MMoE_LLM4MSR.yaml``, if present);
6. ``properties/dataset/<dataset>.yaml``;
7. the converter-written ``<data_path>/<dataset>/<dataset>.yaml``, then, for sequential models,
   ``properties/dataset/<dataset>.sequential.yaml`` (the dataset's sequential view, e.g. purchases only);
8. ``--config_files``, then ``config_dict``, then the command line.

:func:`model_yaml_files` gives 2-5, :func:`dataset_yaml_files` 6-7; RecBole's Config loads 1 and 8 itself
(:class:`recbole_llm4msr.config.MultiScenarioConfig`). :func:`merge_yaml_files` reads a list of files with
RecBole's YAML rules (``1e-3`` is a float) for the tools that do not build a RecBole Config (``llm4msr-knowledge``).

This module imports nothing of ours, so the knowledge library and the converters may use it.
"""
import contextlib
import difflib
import functools
import glob
import importlib.util
import os
import re
import sys
from pathlib import Path

import yaml


def properties_dir():
    """``properties/`` at the repository root (source / editable install) or inside the installed package."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "properties", here / "properties"):
        if (candidate / "overall.yaml").is_file():
            return candidate
    raise FileNotFoundError(f"recbole-llm4msr: properties/overall.yaml not found next to {here}; reinstall the package")


def model_yaml_files(model, backbone=None, enhancement="none", context_aware=True, sequential=False):
    """Our model-level property files for ``model`` (2-5 above), lowest precedence first; may not exist."""
    props = properties_dir()
    files = [props / "overall.yaml"] if context_aware else [props / "sequential.yaml"] if sequential else []
    if enhancement and enhancement != "none":
        files.append(props / "enhancement" / f"{enhancement}.yaml")
    if backbone and backbone != model:
        files.append(props / "model" / f"{backbone}.yaml")
    files.append(props / "model" / f"{model}.yaml")
    return files


def dataset_yaml_files(dataset, data_path, sequential=False):
    """The dataset-level files (6-7 above): ours, then the converter's next to the data, then (sequential models)
    our sequential view of the dataset; may not exist."""
    files = [properties_dir() / "dataset" / f"{dataset}.yaml", Path(data_path) / dataset / f"{dataset}.yaml"]
    if sequential:
        files.append(properties_dir() / "dataset" / f"{dataset}.sequential.yaml")
    return files


class _Loader(yaml.SafeLoader):
    """RecBole's YAML rules: ``1e-3`` and ``1.0e-3`` are floats (plain YAML 1.1 reads them as strings)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                 |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                 |\.[0-9_]+(?:[eE][-+][0-9]+)?
                 |[-+]?\.(?:inf|Inf|INF)
                 |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."),
)


def load_yaml(path):
    with open(path, encoding="utf-8") as f:
        loaded = yaml.load(f, Loader=_Loader)
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ValueError(f"{path}: a settings file must hold 'key: value' lines, not a {type(loaded).__name__}")
    return loaded


def merge_yaml_files(files, user_files=()):
    """Settings from ``files`` (ours: a missing one is skipped) then ``user_files`` (must exist), later files
    winning, as RecBole merges them."""
    merged = {}
    for path in user_files:
        if not Path(path).is_file():
            raise FileNotFoundError(f"config file {path} does not exist")
    for path in list(files) + list(user_files):
        if Path(path).is_file():
            merged.update(load_yaml(path))
    return merged


# settings the code reads with no default in any property file (RecBole's config returns None for them)
UNLISTED_SETTINGS = {"knowledge_store", "world_size", "encoding"}


@contextlib.contextmanager
def hidden_command_line():
    """RecBole's Config reads ``--key=value`` from ``sys.argv``: while a config is built for another purpose than the
    command line's own run (a comparison's runs, the check of the command line's keys), ``sys.argv`` is hidden
    from it, and restored."""
    saved, sys.argv = sys.argv, sys.argv[:1]
    try:
        yield
    finally:
        sys.argv = saved


def property_file_settings():
    """Every top-level key of this package's and RecBole's property files (any model, enhancement, dataset)."""
    recbole_dir = os.path.dirname(importlib.util.find_spec("recbole").origin)
    keys = set(UNLISTED_SETTINGS)
    roots = (str(properties_dir()), os.path.join(recbole_dir, "properties"))
    for path in sorted(p for root in roots for p in glob.glob(os.path.join(root, "**", "*.yaml"), recursive=True)):
        with open(path, encoding="utf-8") as f:
            loaded = yaml.safe_load(f)
        if isinstance(loaded, dict):
            keys.update(loaded)
    return keys


def unknown_settings_error(problems):
    """A ValueError for ``[(where, key, known names)]``: each key with the nearest known names, and what to do."""
    lines = []
    for where, key, known in problems:
        close = difflib.get_close_matches(key, sorted(known), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        lines.append(f"{where}: unknown setting '{key}'{hint}")
    return ValueError("; ".join(lines) + ". Known settings are those RecBole's, the model's and the dataset's "
                      "property files name; a setting no default file names can be given in a YAML passed with "
                      "--config_files")


_TRUE, _FALSE = ("true", "yes", "1"), ("false", "no", "0")


def setting_bool(config, key, default=False):
    """A yes/no setting read strictly: ``True``/``False`` (RecBole's command line turns ``true``/``false`` into them),
    ``1``/``0`` or their words; unset (None) is ``default``. Any other value is an error naming the key: a plain
    ``bool()`` would read ``--meta_residual=maybe`` (or the string ``'off'``) as True."""
    value = config[key]
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(f"{key} must be True or False, not {value!r}")


def setting_number(config, key, kind=int, low=None, high=None, default=None, open_interval=False):
    """A numeric setting read strictly (``kind`` int or float; a bool is not a number here), within ``[low, high]``
    (``(low, high)`` with ``open_interval``); unset (None) is ``default``. Anything else is an error naming the key
    and the range, instead of a failure deep inside torch (or none: ``meta_rank: -1`` used to build a model)."""
    value = config[key]
    if value is None and default is not None:
        return default
    try:
        if isinstance(value, bool) or value is None:
            raise ValueError
        number = kind(value)
        if kind is int and number != float(value):
            raise ValueError
    except (TypeError, ValueError):
        raise ValueError(f"{key} must be {'an integer' if kind is int else 'a number'}, not {value!r}") from None
    below = low is not None and (number <= low if open_interval else number < low)
    above = high is not None and (number >= high if open_interval else number > high)
    if below or above:
        left, right = ("(", ")") if open_interval else ("[", "]")
        span = f"{left}{'-inf' if low is None else low}, {'inf' if high is None else high}{right}"
        raise ValueError(f"{key} must be in {span}, not {value!r}")
    return number


def setting_sizes(config, key):
    """A list of layer widths (each an integer >= 1; the list may be empty), read strictly."""
    value = config[key]
    if value is None:
        return []
    if not isinstance(value, (list, tuple)) or any(isinstance(v, bool) or not isinstance(v, int) or v < 1
                                                   for v in value):
        raise ValueError(f"{key} must be a list of layer widths (integers >= 1), e.g. [32], not {value!r}")
    return list(value)


def setting_count(config, key):
    """An integer >= 1 (a number of experts, of levels, a width), read strictly (:func:`setting_number`)."""
    return setting_number(config, key, int, low=1)


def setting_choice(config, key, choices, default):
    """One of ``choices`` (compared lower-case); unset (None or empty) is ``default``. Anything else is an error
    naming the key and the choices."""
    value = config[key]
    if value is None or value == "":
        return default
    word = str(value).strip().lower()
    if word not in choices:
        raise ValueError(f"{key} must be one of {', '.join(choices)}, not {value!r}")
    return word


def setting_subset(config, key, choices, default):
    """A non-empty list of ``choices`` (e.g. the levels of a meta network); unset (None) is ``default``."""
    value = config[key]
    if value is None:
        return list(default)
    if not isinstance(value, (list, tuple)) or not value or any(v not in choices for v in value):
        raise ValueError(f"{key} must be a non-empty list of {list(choices)}, not {value!r}")
    return list(value)


def reader(read, **options):
    """``read`` (one of the ``setting_*`` functions above) with its options fixed: ``(config, key) -> value``, how a
    model class lists the settings it reads (``setting_readers``)."""
    return functools.partial(read, **options)


def class_setting_readers(cls):
    """``{key: reader}`` of the ``setting_readers`` of ``cls`` and its bases (a subclass's entry wins)."""
    readers = {}
    for klass in reversed(cls.__mro__):
        readers.update(vars(klass).get("setting_readers", {}))
    return readers


class SettingReaders:
    """A model class (backbone, enhancement, TSLRec variant) that lists the settings it reads in ``setting_readers``
    (``{key: reader}``, merged along its bases): :meth:`read_settings` reads and checks them all, the constructor
    builds from what it returns, and :meth:`check_config` checks them with no data (a subclass adds what else its
    settings must satisfy)."""

    setting_readers = {}

    @classmethod
    def read_settings(cls, config):
        """``{key: value}`` of every listed setting, each read and checked: a bad value is a ValueError naming its
        key."""
        return {key: read(config, key) for key, read in class_setting_readers(cls).items()}

    @classmethod
    def check_config(cls, config):
        """Check the values of this class's settings in ``config`` before any data is loaded or any run starts."""
        cls.read_settings(config)
