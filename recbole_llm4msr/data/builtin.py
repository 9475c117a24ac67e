"""Built-in datasets for a RecBole config: converted on first use (:func:`dataset_converters.builtin.ensure_builtin`)."""
import os

from dataset_converters.builtin import ensure_builtin


def dataset_root(config):
    """The folder holding ``<dataset>/`` (RecBole has joined ``data_path`` and the dataset name by now)."""
    return os.path.dirname(os.path.normpath(config["data_path"]))


def ensure_dataset(config):
    """Called before a dataset is loaded: builds built-ins; other names must already exist (checked on load)."""
    ensure_builtin(config["dataset"], dataset_root(config))
