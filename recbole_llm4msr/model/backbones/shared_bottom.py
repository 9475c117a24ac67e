"""Shared Bottom (Caruana, 1997) for multi-scenario CTR: one shared MLP, one tower per scenario."""
from torch import nn

from recbole_llm4msr.layers import MLPBlock, Tower
from recbole_llm4msr.model.backbones.base import BackboneOutput, MultiScenarioBackbone
from recbole_llm4msr.settings import setting_sizes


class SharedBottom(MultiScenarioBackbone):
    setting_readers = {"bottom_mlp_sizes": setting_sizes, "tower_mlp_sizes": setting_sizes}

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.bottom_mlp_sizes = self.model_settings["bottom_mlp_sizes"]
        self.tower_mlp_sizes = self.model_settings["tower_mlp_sizes"]

        self.bottom = MLPBlock(self.input_dim, self.bottom_mlp_sizes, self.dropout_prob, batch_norm=True)
        self.towers = nn.ModuleList(
            Tower(self.bottom.out_dim, self.tower_mlp_sizes, self.dropout_prob) for _ in range(self.num_scenarios)
        )
        self.init_weights()

    def backbone(self, x, inputs):
        shared = self.bottom(x)
        logit = inputs.groups.apply(lambda k, h: self.towers[k](h), shared)
        return BackboneOutput(logit=logit, representation=shared)
