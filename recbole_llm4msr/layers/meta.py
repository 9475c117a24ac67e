"""Generated ("meta") layers: a meta network turns a conditioning vector into the parameters of K layers.

LLM4MSR's hierarchical meta network: ``W_i, b_i = reshape(slice_i(MLP(h)))`` and ``h_i = act(W_i h_(i-1) + b_i)``.
Here ``MLP(h) = A · z(h) + c`` with a bottleneck ``z(h) = tanh(U · LayerNorm(h))`` of width ``rank`` (tanh: no unit can die, and the
generated parameters stay bounded) (a full
4096 -> 8,256 generator would be 34M parameters). Because the last generator layer is linear in ``z``, the per-row
layer never has to be materialised::

    x · W(h) + b(h) = x · C + c_b + sum_r z_r (x · A_r + a_b,r)        (one einsum per layer)

which equals the explicit ``reshape`` form (:meth:`MetaLayers.explicit_parameters`, used by the tests) while using
``B x out x rank`` memory instead of ``B x in x out``. ``rank: 0`` drops the bottleneck (``z = LayerNorm(h)``).

The constant part ``c`` starts as an ordinary xavier-initialised layer and ``A`` near zero, so the generated layers
start as plain layers plus a small conditional part (:meth:`reset_parameters`).
"""
import math

import torch
from torch import nn


class MetaLayers(nn.Module):
    def __init__(self, cond_dim, input_dim, sizes, rank=32, dropout=0.0, last_activation=True):
        super().__init__()
        dims = [input_dim] + list(sizes)
        self.shapes = list(zip(dims[:-1], dims[1:]))
        self.last_activation = last_activation
        self.norm = nn.LayerNorm(cond_dim)
        self.rank = int(rank or 0)
        self.bottleneck = nn.Linear(cond_dim, self.rank) if self.rank > 0 else None
        z_dim = self.rank if self.rank > 0 else cond_dim
        self.total = sum(i * o + o for i, o in self.shapes)
        self.generator = nn.Linear(z_dim, self.total)
        self.dropout = nn.Dropout(dropout)
        self.out_dim = dims[-1]
        self.reset_parameters()

    def reset_parameters(self):
        if self.bottleneck is not None:
            nn.init.xavier_normal_(self.bottleneck.weight)
            nn.init.zeros_(self.bottleneck.bias)
        nn.init.normal_(self.generator.weight, std=0.01 / math.sqrt(self.generator.in_features))
        with torch.no_grad():
            for (w_sl, b_sl), (i, o) in zip(self._slices(), self.shapes):
                self.generator.bias[w_sl].copy_(nn.init.xavier_normal_(torch.empty(o, i)).t().reshape(-1))
                self.generator.bias[b_sl].zero_()

    def _slices(self):
        off = 0
        for i, o in self.shapes:
            yield slice(off, off + i * o), slice(off + i * o, off + i * o + o)
            off += i * o + o

    def code(self, cond):
        """The bottleneck code z(h), [B, rank]."""
        z = self.norm(cond)
        return torch.tanh(self.bottleneck(z)) if self.bottleneck is not None else z

    def explicit_parameters(self, cond):
        """[(W [B, in, out], b [B, out]) per layer]: the literal ``reshape(MLP(h))`` (for tests and inspection)."""
        flat = self.generator(self.code(cond))
        return [(flat[:, w].reshape(-1, i, o), flat[:, b]) for (w, b), (i, o) in zip(self._slices(), self.shapes)]

    def forward_indexed(self, x, cond, index, groups=None):
        """Rows that share a conditioning vector share their layers: ``cond`` [U, cond_dim] holds the distinct
        vectors and ``index`` [B] says which one each row uses. The layers are generated once per distinct vector
        (``reshape(MLP(h))``, :meth:`explicit_parameters`) and applied with one batched matmul; with ``groups``
        (a :class:`ScenarioGroups` over ``index``, for a handful of distinct vectors such as scenarios) each group
        runs a plain linear layer instead. Equal to :meth:`forward` on ``cond[index]``, cheaper when U < B."""
        params = self.explicit_parameters(cond)
        last = len(params) - 1

        def run(h, layer):
            for k, (W, b) in enumerate(layer):
                h = h @ W + b if h.dim() == 2 and W.dim() == 2 else torch.baddbmm(b.unsqueeze(1), h.unsqueeze(1), W).squeeze(1)
                if k < last or self.last_activation:
                    h = self.dropout(torch.relu(h))
            return h

        if groups is not None:
            return groups.apply(lambda g, xg: run(xg, [(W[g], b[g]) for W, b in params]), x)
        return run(x, [(W[index], b[index]) for W, b in params])

    def forward(self, x, cond):
        """x [B, in], cond [B, cond_dim] (row-aligned) -> [B, out_dim]."""
        z = self.code(cond)
        h = x
        weight, bias = self.generator.weight, self.generator.bias
        for k, ((w, b), (i, o)) in enumerate(zip(self._slices(), self.shapes)):
            A = weight[w].reshape(i, o, -1)  # [in, out, r]
            h = h @ bias[w].reshape(i, o) + bias[b] + torch.einsum("bi,ior,br->bo", h, A, z) + z @ weight[b].t()
            if k < len(self.shapes) - 1 or self.last_activation:
                h = self.dropout(torch.relu(h))
        return h
