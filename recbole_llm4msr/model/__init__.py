"""This package's models by name: the six backbones and their ``<Backbone>_<LLM4MSR|DN|EP>`` variants.

:data:`MODELS` is read by :mod:`recbole_llm4msr.registry`; models know nothing of the registry."""
from recbole_llm4msr.model.backbones import BACKBONES
from recbole_llm4msr.model.variants import VARIANTS

MODELS = {cls.__name__: cls for cls in list(BACKBONES) + list(VARIANTS.values())}
