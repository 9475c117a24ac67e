"""Blocks that route rows by scenario: grouping, partitioned normalization, star-topology linear layers."""
import torch
from torch import nn


class ScenarioGroups:
    """The rows of a batch grouped by scenario, to run each scenario's module on its own rows only.

    ``scenario`` holds 0-based scenario indices. :meth:`apply` calls ``fn(k, *tensors_k)`` once per scenario present
    in the batch with that scenario's rows and puts the results back in batch order, so the cost of per-scenario
    parts does not grow with the number of scenarios. Gradients flow through (gather + cat + gather).
    """

    def __init__(self, scenario, num_scenarios):
        self.scenario = scenario
        self.order = torch.argsort(scenario, stable=True)
        self.counts = torch.bincount(scenario, minlength=num_scenarios).tolist()
        if len(self.counts) > num_scenarios:
            raise ValueError(f"scenario index {int(scenario.max())} out of range for {num_scenarios} scenarios")
        self.inverse = torch.empty_like(self.order)
        self.inverse[self.order] = torch.arange(len(self.order), device=self.order.device)
        self.index = list(torch.split(self.order, self.counts))

    def present(self):
        return [k for k, n in enumerate(self.counts) if n > 0]

    def apply(self, fn, *tensors):
        outs = []
        for k in self.present():
            idx = self.index[k]
            outs.append(fn(k, *(t.index_select(0, idx) for t in tensors)))
        return torch.cat(outs, dim=0).index_select(0, self.inverse)


class PartitionedNorm(nn.Module):
    """STAR's partitioned normalization (Sheng et al., CIKM 2021).

    ``z' = (gamma * gamma_p) * (z - E_p) / sqrt(Var_p + eps) + (beta + beta_p)`` for scenario p. In training E_p,
    Var_p are the statistics of scenario p's rows in the batch (with at least 2 rows), and per-scenario running statistics are updated; at
    evaluation the running statistics are used, so a row's output never depends on the other rows of its batch.
    """

    def __init__(self, dim, num_scenarios, momentum=0.1, eps=1e-5):
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.gamma = nn.Parameter(torch.ones(dim))
        self.beta = nn.Parameter(torch.zeros(dim))
        self.gamma_p = nn.Parameter(torch.ones(num_scenarios, dim))
        self.beta_p = nn.Parameter(torch.zeros(num_scenarios, dim))
        self.register_buffer("running_mean", torch.zeros(num_scenarios, dim))
        self.register_buffer("running_var", torch.ones(num_scenarios, dim))

    def forward(self, z, groups):
        def norm(k, zk):
            n = zk.shape[0]
            if self.training and n >= 2:
                mean = zk.mean(dim=0)
                var = zk.var(dim=0, unbiased=False)
                with torch.no_grad():
                    self.running_mean[k].lerp_(mean.detach(), self.momentum)
                    self.running_var[k].lerp_((var * n / (n - 1)).detach(), self.momentum)
            else:
                # evaluation, or a scenario with a single row in this batch: a batch of one has no variance (its
                # statistics would pull the running variance towards 0): use the running statistics, update none
                mean, var = self.running_mean[k], self.running_var[k]
            z_hat = (zk - mean) / torch.sqrt(var + self.eps)
            return (self.gamma * self.gamma_p[k]) * z_hat + (self.beta + self.beta_p[k])

        return groups.apply(norm, z)


class StarLinear(nn.Module):
    """STAR's star-topology fully connected layer: ``W_p = W ⊙ W_p``, ``b_p = b + b_p`` for scenario p.

    The scenario weights start at one and their biases at zero, so training starts from the shared layer.
    """

    def __init__(self, input_dim, output_dim, num_scenarios):
        super().__init__()
        self.shared = nn.Linear(input_dim, output_dim)
        self.weight_p = nn.Parameter(torch.ones(num_scenarios, output_dim, input_dim))
        self.bias_p = nn.Parameter(torch.zeros(num_scenarios, output_dim))

    def forward_scenario(self, k, x):
        weight = self.shared.weight * self.weight_p[k]
        return nn.functional.linear(x, weight, self.shared.bias + self.bias_p[k])
