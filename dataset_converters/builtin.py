"""Built-in datasets (``ml-100k-msr``, ``ml-1m-msr``) are converted on first use into ``data_path``.

Files only: the training code (``prepare``, the Config) and ``llm4msr-knowledge`` both call
:func:`ensure_builtin`; nothing here knows about training.
"""
import importlib
import logging
import os

from dataset_converters import BUILTIN, DOWNLOADED

logger = logging.getLogger(__name__)


def is_complete(path, name):
    # The converter renames a finished folder into place, so a folder with its stats file is complete.
    return os.path.isfile(os.path.join(path, f"{name}.stats.json"))


def ensure_builtin(name, data_path):
    """Convert a built-in dataset into ``data_path/name`` if it is not there yet. Returns True if it was built.
    A dataset the user downloads (:data:`DOWNLOADED`) that is not there yet is an error naming the command."""
    if name in DOWNLOADED and not os.path.isdir(os.path.join(data_path, name)):
        source, command = DOWNLOADED[name]
        raise FileNotFoundError(
            f"dataset '{name}' is not in {data_path}: download {source} and convert it first:\n"
            f"  {command.format(DATA=data_path)}\n(or pass --data_path to the folder that holds {name}/)")
    if name not in BUILTIN:
        return False
    target = os.path.join(data_path, name)
    module = importlib.import_module(BUILTIN[name])
    if is_complete(target, name) or getattr(module, "is_present", lambda folder, name: False)(target, name):
        return False
    if os.path.exists(target):
        raise FileExistsError(
            f"{target} exists but holds no complete '{name}' (no {name}.stats.json); remove it to rebuild, "
            f"or point --data_path elsewhere"
        )
    logger.warning(f"dataset '{name}' not found in {data_path}: converting it now ({BUILTIN[name]})")
    path, stats = module.convert(data_path, name)
    logger.warning(f"dataset '{name}' written to {path}")
    return True
