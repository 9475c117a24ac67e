"""OMoE (one-gate mixture of experts) for multi-scenario CTR: shared experts, ONE gate, one tower per scenario."""
from torch import nn

from recbole_llm4msr.layers import Experts, Tower, mix
from recbole_llm4msr.model.backbones.base import BackboneOutput, MultiScenarioBackbone


class OMoE(MultiScenarioBackbone):
    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.expert_num = config["expert_num"]
        self.expert_mlp_sizes = config["expert_mlp_sizes"]
        self.tower_mlp_sizes = config["tower_mlp_sizes"]

        self.experts = Experts(self.input_dim, self.expert_num, self.expert_mlp_sizes, self.dropout_prob)
        expert_dim = self.experts.out_dim
        self.gate = nn.Linear(self.input_dim, self.expert_num)
        self.towers = nn.ModuleList(
            Tower(expert_dim, self.tower_mlp_sizes, self.dropout_prob) for _ in range(self.num_scenarios)
        )
        self.init_weights()

    def backbone(self, x, inputs):
        mixture = mix(self.gate(x), self.experts(x))
        logit = inputs.groups.apply(lambda k, h: self.towers[k](h), mixture)
        return BackboneOutput(logit=logit, representation=mixture)
