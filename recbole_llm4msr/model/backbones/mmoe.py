"""MMoE (Ma et al., KDD 2018) for multi-scenario CTR: shared experts, one softmax gate and one tower per scenario."""
import torch
from torch import nn

from recbole_llm4msr.layers import Experts, Tower, mix
from recbole_llm4msr.model.backbones.base import BackboneOutput, MultiScenarioBackbone
from recbole_llm4msr.settings import setting_count, setting_sizes


class MMoE(MultiScenarioBackbone):
    setting_readers = {"expert_num": setting_count, "expert_mlp_sizes": setting_sizes, "tower_mlp_sizes": setting_sizes}
    shared_gate = False  # OMoE: one gate for every scenario

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        settings = self.model_settings
        self.expert_num = settings["expert_num"]
        self.expert_mlp_sizes = settings["expert_mlp_sizes"]
        self.tower_mlp_sizes = settings["tower_mlp_sizes"]

        self.experts = Experts(self.input_dim, self.expert_num, self.expert_mlp_sizes, self.dropout_prob)
        expert_dim = self.experts.out_dim
        gates = 1 if self.shared_gate else self.num_scenarios
        self.gates = nn.ModuleList(nn.Linear(self.input_dim, self.expert_num) for _ in range(gates))
        self.towers = nn.ModuleList(
            Tower(expert_dim, self.tower_mlp_sizes, self.dropout_prob) for _ in range(self.num_scenarios)
        )
        self.init_weights()

    def backbone(self, x, inputs):
        experts = self.experts(x)  # [B, E, H]

        def scenario_part(k, xk, ek):
            mixture = mix(self.gates[k](xk), ek)
            return torch.cat([mixture, self.towers[k](mixture).unsqueeze(-1)], dim=-1)

        out = inputs.groups.apply(scenario_part, x, experts)
        return BackboneOutput(logit=out[:, -1], representation=out[:, :-1])
