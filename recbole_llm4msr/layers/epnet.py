"""EPNet, the embedding personalisation gate of PEPNet (Chang et al., KDD 2023)."""
import torch
from torch import nn


class EPNetGate(nn.Module):
    """``delta = gamma * sigmoid(W2 relu(W1 [e_scenario ; stopgrad(e)] + b1) + b2)``; returns ``delta * e``.

    The general embedding enters the gate with its gradient stopped, as in PEPNet, so the gate learns a
    scenario-specific rescaling without pulling the shared embedding; gamma = 2 lets delta range over (0, 2).
    """

    def __init__(self, scenario_dim, input_dim, hidden_size=128, gamma=2.0):
        super().__init__()
        self.gamma = gamma
        self.mlp = nn.Sequential(nn.Linear(scenario_dim + input_dim, hidden_size), nn.ReLU(),
                                 nn.Linear(hidden_size, input_dim))

    def forward(self, x, scenario_embedding):
        delta = self.gamma * torch.sigmoid(self.mlp(torch.cat([scenario_embedding, x.detach()], dim=-1)))
        return delta * x
