"""OMoE (one-gate mixture of experts) for multi-scenario CTR: shared experts, ONE gate, one tower per scenario.

MMoE's layers with a single gate shared by every scenario (``shared_gate``), so one mixture serves all towers.
"""
from recbole_llm4msr.layers import mix
from recbole_llm4msr.model.backbones.base import BackboneOutput
from recbole_llm4msr.model.backbones.mmoe import MMoE


class OMoE(MMoE):
    shared_gate = True

    def backbone(self, x, inputs):
        mixture = mix(self.gates[0](x), self.experts(x))
        logit = inputs.groups.apply(lambda k, h: self.towers[k](h), mixture)
        return BackboneOutput(logit=logit, representation=mixture)
