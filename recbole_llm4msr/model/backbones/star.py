"""STAR (Sheng et al., CIKM 2021): partitioned normalization, star-topology FCN and an auxiliary network.

* Partitioned normalization on the embedding, with per-scenario batch statistics in training and per-scenario
  *running* statistics at evaluation (a row's score never depends on the rest of its batch).
* Star-topology FCN: scenario p's layer uses ``W ⊙ W_p`` and ``b + b_p``; every scenario runs only on its rows.
* Auxiliary network: an MLP on the scenario embedding concatenated with the features; its logit is added to the
  FCN's logit before the sigmoid (no activation after its last unit, so it can be negative).
"""
import torch
from torch import nn

from recbole_llm4msr.layers import PartitionedNorm, StarLinear, Tower
from recbole_llm4msr.model.backbones.base import BackboneOutput, MultiScenarioBackbone
from recbole_llm4msr.settings import reader, setting_number, setting_sizes


class STAR(MultiScenarioBackbone):
    setting_readers = {"star_mlp_sizes": setting_sizes, "aux_mlp_sizes": setting_sizes,
                       "pn_momentum": reader(setting_number, kind=float, low=0.0, high=1.0)}

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        settings = self.model_settings
        self.star_mlp_sizes = settings["star_mlp_sizes"]
        self.aux_mlp_sizes = settings["aux_mlp_sizes"]
        self.pn_momentum = settings["pn_momentum"]

        self.partitioned_norm = PartitionedNorm(self.input_dim, self.num_scenarios, momentum=self.pn_momentum)
        dims = [self.input_dim] + list(self.star_mlp_sizes)
        self.star_layers = nn.ModuleList(
            StarLinear(d_in, d_out, self.num_scenarios) for d_in, d_out in zip(dims[:-1], dims[1:])
        )
        self.star_output = StarLinear(dims[-1], 1, self.num_scenarios)
        self.dropout = nn.Dropout(self.dropout_prob)
        self.aux = Tower(self.embedding_size + self.input_dim, self.aux_mlp_sizes, self.dropout_prob)
        self.init_weights()

    def backbone(self, x, inputs):
        z = self.partitioned_norm(x, inputs.groups)

        def scenario_part(k, h):
            for layer in self.star_layers:
                h = self.dropout(torch.relu(layer.forward_scenario(k, h)))
            return torch.cat([h, self.star_output.forward_scenario(k, h)], dim=-1)

        out = inputs.groups.apply(scenario_part, z)
        aux_logit = self.aux(torch.cat([inputs.scenario_embedding, x], dim=-1))
        return BackboneOutput(logit=out[:, -1] + aux_logit, representation=out[:, :-1])
