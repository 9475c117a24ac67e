"""AITM's attention unit (Xi et al., KDD 2021)."""
import math

import torch
from torch import nn


class TransferAttention(nn.Module):
    """Attention over the stacked inputs ``[B, n, d]`` (AITM uses n = 2: {p_(t-1), q_t}).

    Bias-free query / key / value projections, softmax over the n inputs of each row, scores scaled by sqrt(d);
    returns the weighted sum of the values, ``[B, d]``.
    """

    def __init__(self, dim):
        super().__init__()
        self.query = nn.Linear(dim, dim, bias=False)
        self.key = nn.Linear(dim, dim, bias=False)
        self.value = nn.Linear(dim, dim, bias=False)
        self.scale = math.sqrt(dim)

    def forward(self, inputs):
        q, k, v = self.query(inputs), self.key(inputs), self.value(inputs)
        weights = torch.softmax((q * k).sum(-1) / self.scale, dim=1)  # [B, n]
        return (weights.unsqueeze(-1) * v).sum(dim=1)
