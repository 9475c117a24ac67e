"""This package's models by name: the six backbones, their ``<Backbone>_<LLM4MSR|DN|EP>`` variants and the TSLRec
variants of RecBole's sequential models (``SASRec_TSLRec``, ``GRU4Rec_TSLRec``; any other by name, see registry).

:data:`MODELS` is read by :mod:`recbole_llm4msr.registry`; models know nothing of the registry."""
from recbole_llm4msr.model.backbones import BACKBONES
from recbole_llm4msr.model.tslrec import TSLREC_MODELS
from recbole_llm4msr.model.variants import VARIANTS

MODELS = {cls.__name__: cls for cls in list(BACKBONES) + list(VARIANTS.values()) + list(TSLREC_MODELS.values())}
