"""Enhancements that wrap any backbone: ``enhancement: none | llm4msr | dn | ep``."""
from recbole_llm4msr.model.enhancements.base import Enhancement
from recbole_llm4msr.model.enhancements.dn import DynamicNetwork
from recbole_llm4msr.model.enhancements.ep import EPNet
from recbole_llm4msr.model.enhancements.llm4msr import LLM4MSR

__all__ = ["Enhancement", "ENHANCEMENTS", "SUFFIX", "build_enhancement", "enhancement_class"]

ENHANCEMENTS = {"llm4msr": LLM4MSR, "dn": DynamicNetwork, "ep": EPNet}
# the suffix of the variant model names: MMoE_LLM4MSR, STAR_DN, PLE_EP
SUFFIX = {"llm4msr": "LLM4MSR", "dn": "DN", "ep": "EP"}


def enhancement_class(name):
    """The enhancement class ``name`` names, or None for ``none``."""
    name = (name or "none").lower()
    if name == "none":
        return None
    if name not in ENHANCEMENTS:
        raise ValueError(f"enhancement '{name}' is unknown; use one of none, {', '.join(ENHANCEMENTS)}")
    return ENHANCEMENTS[name]


def build_enhancement(name, backbone, config, dataset):
    """The enhancement ``name`` for ``backbone``, or None for ``none``."""
    cls = enhancement_class(name)
    return None if cls is None else cls(backbone, config, dataset)
