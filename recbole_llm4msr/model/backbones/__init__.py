"""The six multi-scenario backbones LLM4MSR enhances (one file each) and their base class."""
from recbole_llm4msr.model.backbones.aitm import AITM
from recbole_llm4msr.model.backbones.base import BackboneInput, BackboneOutput, MultiScenarioBackbone
from recbole_llm4msr.model.backbones.mmoe import MMoE
from recbole_llm4msr.model.backbones.omoe import OMoE
from recbole_llm4msr.model.backbones.ple import PLE
from recbole_llm4msr.model.backbones.shared_bottom import SharedBottom
from recbole_llm4msr.model.backbones.star import STAR

BACKBONES = (SharedBottom, MMoE, OMoE, PLE, STAR, AITM)

__all__ = ["MultiScenarioBackbone", "BackboneInput", "BackboneOutput", "BACKBONES"] + [b.__name__ for b in BACKBONES]
