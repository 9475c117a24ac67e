"""This package's models, registered with :mod:`recbole_llm4msr.registry` under their class names."""
from recbole_llm4msr.model.backbones import BACKBONES
from recbole_llm4msr.registry import register_model

for _backbone in BACKBONES:
    register_model(_backbone)
