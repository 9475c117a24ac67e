"""Every fix needed to run RecBole 1.2.1 on today's stack, in one place.

RecBole 1.2.1 predates numpy 2, pandas 3 and torch 2.6. What breaks and how we handle it:

=====================================  ==================================================================
problem                                handling
=====================================  ==================================================================
setuptools >= 81 (no pkg_resources;    pin ``setuptools<81`` (setup.py). Nothing to shim.
ray imports it)
numpy 2 (np.bool8 in ray, np.float_    pin ``numpy<2`` (setup.py): ray 2.6.3 itself needs it.
in recbole's configurator)
pandas 3 (Series.agg(len), chained     pin ``pandas<3`` (setup.py): no small shim can fix recbole's
fillna(inplace=True))                  Dataset internals.
torch >= 2.6 ``torch.load`` defaults   :func:`torch_load` below: every load path of ours (best-model
to weights_only=True; RecBole pickles  reload in the trainer, ``resume_checkpoint``,
its Config into checkpoints            ``load_data_and_model``) calls it, with ``weights_only=False``
                                       and a ``map_location`` so GPU checkpoints load on CPU.
an unknown model name makes RecBole    :mod:`recbole_llm4msr.registry` resolves names itself and lists
import lightgbm/xgboost                the available ones instead.
RecBole sets numpy aliases (np.long,   :func:`ensure_numpy_aliases`: ``load_data_and_model`` unpickles a
np.float, ...) in ``Config.__init__``; Config from a checkpoint (``__init__`` never runs), so a fresh
its models use them (np.long in       process that only loads a checkpoint would fail with
ContextRecommender)                    ``AttributeError: np.long``; we set the same aliases first.
RecBole's SINE model                   :func:`anomaly_mode_kept`: every import of RecBole's model modules by
(``sequential_recommender/sine.py``)   this package (the registry, the TSLRec variants) runs inside it,
calls ``torch.autograd.                which puts the anomaly mode back as it was. Anomaly detection records
set_detect_anomaly(True)`` at import   a traceback per operation and checks every gradient: it left every
                                       later training in the process (ours, stock RecBole's) ~10x slower
                                       on small models, with the same numbers.
RecBole's trainer makes a             :func:`recbole_deprecations_quiet`: our trainers' epochs run inside it,
``torch.cuda.amp.GradScaler`` every    which silences that one FutureWarning (matched by category and
epoch: torch >= 2.4 warns that the     message); every other warning shows as before. The scaler itself is
form is deprecated, a line of noise    off on CPU and works on GPUs as it did.
per epoch in every run
RecBole's ``Dataset._fill_nan`` calls  the same context around every dataset this package creates
``feat[field].fillna(..., inplace=     (:func:`recbole_llm4msr.registry.create_dataset`): pandas < 3 (our pin)
True)`` and ``_remap`` calls           still fills in place and still maps ``len`` over the items (both
``Series.agg(len)``: pandas 2.2+ warns tested), so the warnings, which are about pandas 3, say nothing about our
(8 lines per field) that both stop     runs. They are the reason for the ``pandas<3`` pin above.
working in pandas 3
=====================================  ==================================================================

Nothing here edits or monkey-patches the installed ``recbole`` package.
"""
import contextlib
import warnings

import numpy as np
import torch

# the aliases RecBole's Config.compatibility_settings() sets (numpy < 2 has the right-hand sides)
_NUMPY_ALIASES = {"bool": "bool_", "int": "int_", "float": "float_", "complex": "complex_", "object": "object_",
                  "str": "str_", "long": "int_", "unicode": "unicode_"}


def ensure_numpy_aliases():
    """Set the numpy aliases RecBole 1.2.1 relies on, as its own Config.__init__ does (idempotent)."""
    for alias, target in _NUMPY_ALIASES.items():
        if alias not in np.__dict__ and hasattr(np, target):
            setattr(np, alias, getattr(np, target))


def torch_load(path, map_location="cpu"):
    """Load a RecBole checkpoint (a pickled dict holding a Config) under torch >= 2.6.

    RecBole writes ``{"config": Config, ...}`` with pickle protocol 4, which the weights-only unpickler of
    torch >= 2.6 refuses; ``add_safe_globals`` cannot help because Config pulls in arbitrary classes. Only load
    checkpoints you trust (they are pickles).
    """
    return torch.load(path, map_location=map_location, weights_only=False)


@contextlib.contextmanager
def anomaly_mode_kept():
    """Whatever runs inside (importing RecBole's model modules, or ``importlib.util.find_spec`` of one, which
    imports its parent packages) leaves torch's anomaly mode (and its NaN check) as it was: RecBole's
    ``sequential_recommender/sine.py`` calls ``torch.autograd.set_detect_anomaly(True)`` at import. A caller who
    turned it on keeps it."""
    enabled, check_nan = torch.is_anomaly_enabled(), torch.is_anomaly_check_nan_enabled()
    try:
        yield
    finally:
        torch.autograd.set_detect_anomaly(enabled, check_nan=check_nan)


# (message, category) of the warnings RecBole 1.2.1's own code raises on our pinned stack, about a future we pin away
_RECBOLE_DEPRECATIONS = (
    (r"`torch\.cuda\.amp\.GradScaler\(args\.\.\.\)` is deprecated", FutureWarning),  # Trainer._train_epoch
    (r"A value is trying to be set on a copy of a DataFrame or Series through chained assignment using an inplace "
     r"method", FutureWarning),  # Dataset._fill_nan (pandas >= 2.2; fills in place below pandas 3)
    (r"using <built-in function len> in Series\.agg cannot aggregate", FutureWarning),  # Dataset._remap, token_seq
)


@contextlib.contextmanager
def recbole_deprecations_quiet():
    """Inside, the FutureWarnings RecBole 1.2.1's code raises on our pinned stack are not shown: torch >= 2.4's for
    ``torch.cuda.amp.GradScaler(...)`` (built by ``Trainer._train_epoch`` every epoch) and pandas >= 2.2's for the
    chained in-place ``fillna`` of ``Dataset._fill_nan`` and the ``Series.agg(len)`` of ``Dataset._remap``. Any other
    warning is shown as before."""
    with warnings.catch_warnings():
        for message, category in _RECBOLE_DEPRECATIONS:
            warnings.filterwarnings("ignore", message=message, category=category)
        yield
