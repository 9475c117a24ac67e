"""PLE (Tang et al., RecSys 2020) for multi-scenario CTR: stacked CGC levels, scenario = task.

Each level has ``specific_expert_num`` experts per scenario and ``shared_expert_num`` shared experts. Scenario k's
gate mixes its own experts with the shared ones; a shared gate over all experts feeds the shared branch of the next
level (not needed at the last level). Towers read each scenario's last-level output.

Cost: the last level runs per scenario group (each row only through its own scenario's experts, gate and tower).
Levels before it feed the shared gate, which mixes *every* scenario's experts on every row, so with
``ple_levels > 1`` those levels run all scenario branches on all rows -- inherent to PLE. Specific experts run on
one scenario's rows (possibly one row), so they use no BatchNorm; shared experts do.
"""
import torch
from torch import nn

from recbole_llm4msr.layers import Experts, Tower, mix
from recbole_llm4msr.model.backbones.base import BackboneOutput, MultiScenarioBackbone
from recbole_llm4msr.settings import setting_count, setting_sizes


class CGCLevel(nn.Module):
    def __init__(self, input_dim, num_scenarios, n_specific, n_shared, sizes, dropout, with_shared_gate):
        super().__init__()
        self.specific = nn.ModuleList(
            Experts(input_dim, n_specific, sizes, dropout, batch_norm=False) for _ in range(num_scenarios)
        )
        self.shared = Experts(input_dim, n_shared, sizes, dropout, batch_norm=True)
        self.gates = nn.ModuleList(nn.Linear(input_dim, n_specific + n_shared) for _ in range(num_scenarios))
        self.shared_gate = (
            nn.Linear(input_dim, num_scenarios * n_specific + n_shared) if with_shared_gate else None
        )
        self.out_dim = self.shared.out_dim

    def specific_experts(self, k, x):
        return self.specific[k](x)

    def shared_experts(self, x):
        return self.shared(x)

    def scenario_output(self, k, branch_input, shared_experts):
        experts = torch.cat([self.specific_experts(k, branch_input), shared_experts], dim=1)
        return mix(self.gates[k](branch_input), experts)


class PLE(MultiScenarioBackbone):
    setting_readers = {"ple_levels": setting_count, "specific_expert_num": setting_count,
                       "shared_expert_num": setting_count, "expert_mlp_sizes": setting_sizes,
                       "tower_mlp_sizes": setting_sizes}

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        settings = self.model_settings
        self.ple_levels = settings["ple_levels"]
        self.specific_expert_num = settings["specific_expert_num"]
        self.shared_expert_num = settings["shared_expert_num"]
        self.expert_mlp_sizes = settings["expert_mlp_sizes"]
        self.tower_mlp_sizes = settings["tower_mlp_sizes"]

        self.levels = nn.ModuleList()
        dim = self.input_dim
        for level in range(self.ple_levels):
            cgc = CGCLevel(dim, self.num_scenarios, self.specific_expert_num, self.shared_expert_num,
                           self.expert_mlp_sizes, self.dropout_prob, with_shared_gate=level < self.ple_levels - 1)
            self.levels.append(cgc)
            dim = cgc.out_dim
        self.towers = nn.ModuleList(
            Tower(dim, self.tower_mlp_sizes, self.dropout_prob) for _ in range(self.num_scenarios)
        )
        self.init_weights()

    def backbone(self, x, inputs):
        branches, shared = None, x  # branches[k]: scenario k's input to the next level (None: all equal x)
        for cgc in self.levels[:-1]:
            shared_experts = cgc.shared_experts(shared)
            inputs_k = branches or [x] * self.num_scenarios
            specific = [cgc.specific_experts(k, inputs_k[k]) for k in range(self.num_scenarios)]
            branches = [
                mix(cgc.gates[k](inputs_k[k]), torch.cat([specific[k], shared_experts], dim=1))
                for k in range(self.num_scenarios)
            ]
            shared = mix(cgc.shared_gate(shared), torch.cat(specific + [shared_experts], dim=1))
        last = self.levels[-1]
        own_branch = x if branches is None else torch.stack(branches, dim=1)[
            torch.arange(x.shape[0], device=x.device), inputs.scenario]
        shared_experts = last.shared_experts(shared)

        def scenario_part(k, branch_k, shared_k):
            h = last.scenario_output(k, branch_k, shared_k)
            return torch.cat([h, self.towers[k](h).unsqueeze(-1)], dim=-1)

        out = inputs.groups.apply(scenario_part, own_branch, shared_experts)
        return BackboneOutput(logit=out[:, -1], representation=out[:, :-1])
