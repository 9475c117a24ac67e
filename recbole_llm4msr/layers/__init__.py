"""Small reusable blocks the models are composed of (FuxiCTR-style vocabulary)."""
from recbole_llm4msr.layers.attention import TransferAttention
from recbole_llm4msr.layers.epnet import EPNetGate
from recbole_llm4msr.layers.knowledge import KnowledgeTable
from recbole_llm4msr.layers.meta import FactoredMetaLayers, MetaLayers, meta_layers
from recbole_llm4msr.layers.mlp import Experts, MLPBlock, Tower, mix
from recbole_llm4msr.layers.scenario import PartitionedNorm, ScenarioGroups, StarLinear

__all__ = ["MLPBlock", "Tower", "Experts", "mix", "TransferAttention", "PartitionedNorm", "ScenarioGroups", "StarLinear",
           "MetaLayers", "FactoredMetaLayers", "meta_layers", "EPNetGate", "KnowledgeTable"]
