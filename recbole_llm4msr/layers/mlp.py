"""MLP blocks: Linear -> [BatchNorm1d] -> ReLU -> Dropout, the block the MSR references use."""
import torch
from torch import nn


class MLPBlock(nn.Sequential):
    """``len(hidden_sizes)`` layers of Linear -> [BatchNorm1d] -> ReLU -> Dropout. ``out_dim`` is the last size."""

    def __init__(self, input_dim, hidden_sizes, dropout=0.0, batch_norm=True):
        layers = []
        dim = input_dim
        for size in hidden_sizes:
            layers.append(nn.Linear(dim, size))
            if batch_norm:
                layers.append(nn.BatchNorm1d(size))
            layers.append(nn.ReLU())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            dim = size
        super().__init__(*layers)
        self.out_dim = dim


class Tower(nn.Module):
    """A scenario tower: an MLP then ``Linear(., 1)``; returns the logit, shape ``[B]``.

    Towers run on one scenario's rows only, which can be a single row: they use no BatchNorm.
    """

    def __init__(self, input_dim, hidden_sizes, dropout=0.0):
        super().__init__()
        self.mlp = MLPBlock(input_dim, hidden_sizes, dropout, batch_norm=False)
        self.out = nn.Linear(self.mlp.out_dim, 1)

    def forward(self, x):
        return self.out(self.mlp(x)).squeeze(-1)


class Experts(nn.Module):
    """``num`` expert MLPs on the same input; returns their outputs stacked, ``[B, num, out_dim]``."""

    def __init__(self, input_dim, num, hidden_sizes, dropout=0.0, batch_norm=True):
        super().__init__()
        self.experts = nn.ModuleList(MLPBlock(input_dim, hidden_sizes, dropout, batch_norm) for _ in range(num))
        self.out_dim = self.experts[0].out_dim

    def forward(self, x):
        return torch.stack([expert(x) for expert in self.experts], dim=1)


def mix(gate_logits, experts):
    """Softmax-gated mixture: ``gate_logits`` [B, E], ``experts`` [B, E, H] -> [B, H]."""
    return (torch.softmax(gate_logits, dim=-1).unsqueeze(-1) * experts).sum(dim=1)
