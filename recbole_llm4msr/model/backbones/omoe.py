"""OMoE (one-gate mixture of experts) for multi-scenario CTR: shared experts, ONE gate, one tower per scenario."""
import torch
from torch import nn

from recbole_llm4msr.layers import MLPBlock, Tower
from recbole_llm4msr.model.backbones.base import BackboneOutput, MultiScenarioBackbone


class OMoE(MultiScenarioBackbone):
    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.expert_num = config["expert_num"]
        self.expert_mlp_sizes = config["expert_mlp_sizes"]
        self.tower_mlp_sizes = config["tower_mlp_sizes"]

        self.experts = nn.ModuleList(
            MLPBlock(self.input_dim, self.expert_mlp_sizes, self.dropout_prob) for _ in range(self.expert_num)
        )
        expert_dim = self.experts[0].out_dim
        self.gate = nn.Linear(self.input_dim, self.expert_num)
        self.towers = nn.ModuleList(
            Tower(expert_dim, self.tower_mlp_sizes, self.dropout_prob) for _ in range(self.num_scenarios)
        )
        self.init_weights()

    def backbone(self, x, inputs):
        experts = torch.stack([expert(x) for expert in self.experts], dim=1)  # [B, E, H]
        weights = torch.softmax(self.gate(x), dim=-1).unsqueeze(-1)
        mixture = (weights * experts).sum(dim=1)
        logit = inputs.groups.apply(lambda k, h: self.towers[k](h), mixture)
        return BackboneOutput(logit=logit, representation=mixture)
