"""AITM (Xi et al., KDD 2021) with scenarios as tasks, chained in scenario-index order.

For scenario t a bottom MLP gives q_t. For t > 0 the previous scenario's representation is transferred,
``p_(t-1) = g_(t-1)(z_(t-1))``, and the attention unit over {p_(t-1), q_t} gives z_t (z_0 = q_0); scenario t's tower
reads z_t. A row of scenario t needs the chain z_0 .. z_t on that row, so cost grows with t (inherent to AITM); the
towers run per scenario group.

AITM's behavioural-expectation calibration loss is left out: it forces p(conversion) <= p(click) along a
click -> conversion funnel, and there is no such order between scenarios (a search click does not bound a
recommendation click).
"""
import torch
from torch import nn

from recbole_llm4msr.layers import MLPBlock, Tower, TransferAttention
from recbole_llm4msr.model.backbones.base import BackboneOutput, MultiScenarioBackbone
from recbole_llm4msr.settings import setting_sizes


class AITM(MultiScenarioBackbone):
    setting_readers = {"bottom_mlp_sizes": setting_sizes, "tower_mlp_sizes": setting_sizes}

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.bottom_mlp_sizes = self.model_settings["bottom_mlp_sizes"]
        self.tower_mlp_sizes = self.model_settings["tower_mlp_sizes"]

        S = self.num_scenarios
        self.bottoms = nn.ModuleList(
            MLPBlock(self.input_dim, self.bottom_mlp_sizes, self.dropout_prob, batch_norm=False) for _ in range(S)
        )
        dim = self.bottoms[0].out_dim
        self.transfers = nn.ModuleList(nn.Sequential(nn.Linear(dim, dim), nn.ReLU()) for _ in range(S - 1))
        self.attentions = nn.ModuleList(TransferAttention(dim) for _ in range(S - 1))
        self.towers = nn.ModuleList(Tower(dim, self.tower_mlp_sizes, self.dropout_prob) for _ in range(S))
        self.init_weights()

    def chain(self, k, x):
        z = self.bottoms[0](x)
        for t in range(1, k + 1):
            p = self.transfers[t - 1](z)
            q = self.bottoms[t](x)
            z = self.attentions[t - 1](torch.stack([p, q], dim=1))
        return z

    def backbone(self, x, inputs):
        def scenario_part(k, xk):
            z = self.chain(k, xk)
            return torch.cat([z, self.towers[k](z).unsqueeze(-1)], dim=-1)

        out = inputs.groups.apply(scenario_part, x)
        return BackboneOutput(logit=out[:, -1], representation=out[:, :-1])
