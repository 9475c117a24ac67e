"""This package's models, registered with :mod:`recbole_llm4msr.registry` under their class names: the six
backbones and their ``<Backbone>_<LLM4MSR|DN|EP>`` variants."""
from recbole_llm4msr.model.backbones import BACKBONES
from recbole_llm4msr.model.variants import VARIANTS
from recbole_llm4msr.registry import register_model

for _model in list(BACKBONES) + list(VARIANTS.values()):
    register_model(_model)
