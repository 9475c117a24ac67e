"""Generated ("meta") layers: a meta network turns a conditioning vector into the parameters of K layers.

LLM4MSR's hierarchical meta network: ``W_i, b_i = reshape(slice_i(MLP(h)))`` and ``h_i = act(W_i h_(i-1) + b_i)``.
Here ``MLP(h) = A · z(h) + c`` with a bottleneck ``z(h) = tanh(U · LayerNorm(h))`` of width ``rank`` (tanh: no unit can die, and the
generated parameters stay bounded) (a full
4096 -> 8,256 generator would be 34M parameters). Because the last generator layer is linear in ``z``, the per-row
layer never has to be materialised::

    x · W(h) + b(h) = x · C + c_b + sum_r z_r (x · A_r + a_b,r)        (one GEMM per layer)

which equals the explicit ``reshape`` form (:meth:`MetaLayers.explicit_parameters`, used by the tests) while using
``B x out x rank`` memory instead of ``B x in x out``. ``rank: 0`` drops the bottleneck (``z = LayerNorm(h)``).

The constant part ``c`` starts as an ordinary xavier-initialised layer and ``A`` near zero, so the generated layers
start as plain layers plus a small conditional part (:meth:`reset_parameters`).
"""
import math

import torch
from torch import nn


class Codes:
    """The bottleneck codes ``z(h)`` of a set of conditioning vectors, computed beforehand (:meth:`MetaLayers.codes`):
    passed as ``cond`` to :meth:`MetaLayers.forward`, they are used as they are (e.g. every user's code, computed once
    per evaluation)."""

    __slots__ = ("z",)

    def __init__(self, z):
        self.z = z


class Generated:
    """The layers generated for a handful of conditioning vectors, computed beforehand
    (:meth:`MetaLayers.generated`): passed as ``cond`` to :meth:`MetaLayers.forward_grouped`, they are used as they
    are (e.g. every scenario's layers, generated once per evaluation)."""

    __slots__ = ("params",)

    def __init__(self, params):
        self.params = params


class MetaLayers(nn.Module):
    def __init__(self, cond_dim, input_dim, sizes, rank=32, dropout=0.0, last_activation=True):
        super().__init__()
        dims = [input_dim] + list(sizes)
        self.shapes = list(zip(dims[:-1], dims[1:]))
        self.last_activation = last_activation
        self.norm = nn.LayerNorm(cond_dim)
        self.rank = int(rank or 0)
        self.bottleneck = nn.Linear(cond_dim, self.rank) if self.rank > 0 else None
        self.dropout = nn.Dropout(dropout)
        self.out_dim = dims[-1]
        self.build_generator(self.rank if self.rank > 0 else cond_dim)
        self.reset_parameters()

    @classmethod
    def check_rank(cls, rank):
        """An error when this generator cannot be built with ``meta_rank: rank`` (any rank >= 0 works here)."""

    def build_generator(self, z_dim):
        """The parameters that turn the code z into layers: one linear map to every entry of every layer."""
        self.total = sum(i * o + o for i, o in self.shapes)
        self.generator = nn.Linear(z_dim, self.total)

    def reset_parameters(self):
        if self.bottleneck is not None:
            nn.init.xavier_normal_(self.bottleneck.weight)
            nn.init.zeros_(self.bottleneck.bias)
        nn.init.normal_(self.generator.weight, std=0.01 / math.sqrt(self.generator.in_features))
        with torch.no_grad():
            for (w_sl, b_sl), (i, o) in zip(self._slices(), self.shapes):
                self.generator.bias[w_sl].copy_(nn.init.xavier_normal_(torch.empty(o, i)).t().reshape(-1))
                self.generator.bias[b_sl].zero_()

    def zero_last_layer(self):
        """The last generated layer outputs 0 at initialisation (its constant part zero; its conditional part is
        already near zero): a residual ``x + MetaLayers(x)`` then starts as the identity."""
        w_sl, b_sl = list(self._slices())[-1]
        with torch.no_grad():
            self.generator.bias[w_sl].zero_()
            self.generator.bias[b_sl].zero_()
            self.generator.weight[w_sl].zero_()
            self.generator.weight[b_sl].zero_()

    def _slices(self):
        off = 0
        for i, o in self.shapes:
            yield slice(off, off + i * o), slice(off + i * o, off + i * o + o)
            off += i * o + o

    def code(self, cond):
        """The bottleneck code z(h), [B, rank]."""
        z = self.norm(cond)
        return torch.tanh(self.bottleneck(z)) if self.bottleneck is not None else z

    def codes(self, cond):
        """:class:`Codes` of the vectors ``cond`` [U, cond_dim], to pass as ``cond`` to :meth:`forward` later."""
        return Codes(self.code(cond))

    def generated(self, cond):
        """:class:`Generated` layers of the vectors ``cond`` [G, cond_dim], to pass as ``cond`` to
        :meth:`forward_grouped` later."""
        return Generated(self.explicit_parameters(cond))

    def code_parameters(self):
        """The parameters the codes depend on (the normalisation and the bottleneck)."""
        return list(self.norm.parameters()) + (list(self.bottleneck.parameters()) if self.bottleneck is not None else [])

    def _row_codes(self, cond, index):
        z = cond.z if isinstance(cond, Codes) else self.code(cond)
        return z if index is None else z[index]

    def explicit_parameters(self, cond):
        """[(W [B, in, out], b [B, out]) per layer]: the literal ``reshape(MLP(h))`` (for tests and inspection)."""
        flat = self.generator(self.code(cond))
        return [(flat[:, w].reshape(-1, i, o), flat[:, b]) for (w, b), (i, o) in zip(self._slices(), self.shapes)]

    def forward_grouped(self, x, cond, groups):
        """Rows grouped by a handful of distinct conditioning vectors (e.g. scenarios): ``cond`` [G, cond_dim]
        holds one vector per group of ``groups`` (a :class:`ScenarioGroups`). The layers are generated once per
        group (the literal ``reshape(MLP(h))``) and each group runs them as plain linear layers. Equal to
        :meth:`forward` on the row-aligned vectors. ``cond`` may also be precomputed :class:`Generated` layers."""
        params = cond.params if isinstance(cond, Generated) else self.explicit_parameters(cond)
        last = len(params) - 1

        def run(g, h):
            for k, (W, b) in enumerate(params):
                h = h @ W[g] + b[g]
                if k < last or self.last_activation:
                    h = self.dropout(torch.relu(h))
            return h

        return groups.apply(run, x)

    def forward(self, x, cond, index=None):
        """x [B, in]; cond [B, cond_dim] row-aligned, or with ``index`` [B] the distinct vectors [U, cond_dim] that
        each row points to (the bottleneck then runs once per distinct vector) -> [B, out_dim]. ``cond`` may also be
        precomputed :class:`Codes` (row-aligned, or with ``index``)."""
        z = self._row_codes(cond, index)
        # [1, z]: the generator's bias (the constant layer C, c_b) becomes rank 0 of the same product
        z1 = torch.cat([torch.ones_like(z[:, :1]), z], dim=1)
        h = x
        weight, bias = self.generator.weight, self.generator.bias
        r = z1.shape[1]
        for k, ((w, b), (i, o)) in enumerate(zip(self._slices(), self.shapes)):
            A = torch.cat([bias[w].unsqueeze(1), weight[w]], dim=1)  # [(in * out), 1 + rank]
            if o <= i:  # sum_r z_r (h . A_r): one GEMM [B, in] x [in, out * r], then a weighted sum over r
                mixed = torch.bmm((h @ A.reshape(i, o * r)).view(-1, o, r), z1.unsqueeze(-1)).squeeze(-1)
            else:  # the same sum as one GEMM on the outer product (h ⊗ z) [B, in * r] x [in * r, out]
                mixed = (h.unsqueeze(2) * z1.unsqueeze(1)).reshape(-1, i * r) @ A.view(i, o, r).transpose(1, 2).reshape(i * r, o)
            h = mixed + z1 @ torch.cat([bias[b].unsqueeze(1), weight[b]], dim=1).t()
            if k < len(self.shapes) - 1 or self.last_activation:
                h = self.dropout(torch.relu(h))
        return h


class FactoredMetaLayers(MetaLayers):
    """Meta layers whose generated part is factored: ``W(h) = C + U diag(z(h)) V``, ``b(h) = c + z(h) B``.

    :class:`MetaLayers` generates every entry of every layer from the code ``z`` (``W(h) = C + sum_r z_r A_r`` with
    full ``in x out`` matrices ``A_r``), which costs ``in x out x (1 + rank)`` multiply-adds per row and layer. Here each
    ``A_r`` is the rank-one ``u_r v_r^T``, so ``W(h)`` is still a layer generated from the knowledge vector (``reshape``
    of the generator's output, :meth:`explicit_parameters`) but a row costs ``in x out + rank x (in + out)``::

        x · W(h) + b(h) = x · C + c + ((x · U) * z) · V + z · B

    (``meta_generator: factored``; about 7x fewer multiply-adds than ``full`` at the default widths and rank 8). The
    conditional part starts at zero (``V``, ``B``), so the layers start as plain ones, as with ``full``.
    """

    @classmethod
    def check_rank(cls, rank):
        if not rank or int(rank) <= 0:
            raise ValueError(f"meta_generator 'factored' needs meta_rank > 0 (the width of the factors), not {rank}")

    def __init__(self, cond_dim, input_dim, sizes, rank=32, dropout=0.0, last_activation=True):
        self.check_rank(rank)
        super().__init__(cond_dim, input_dim, sizes, rank, dropout, last_activation)

    def build_generator(self, z_dim):
        """Per layer: the constant layer C, c and the factors U, V, B of its conditional part."""
        self.C = nn.ParameterList([nn.Parameter(torch.empty(i, o)) for i, o in self.shapes])
        self.c = nn.ParameterList([nn.Parameter(torch.empty(o)) for _, o in self.shapes])
        self.U = nn.ParameterList([nn.Parameter(torch.empty(i, z_dim)) for i, _ in self.shapes])
        self.V = nn.ParameterList([nn.Parameter(torch.empty(z_dim, o)) for _, o in self.shapes])
        self.B = nn.ParameterList([nn.Parameter(torch.empty(z_dim, o)) for _, o in self.shapes])

    def reset_parameters(self):
        nn.init.xavier_normal_(self.bottleneck.weight)
        nn.init.zeros_(self.bottleneck.bias)
        for C, c, U, V, B in zip(self.C, self.c, self.U, self.V, self.B):
            nn.init.xavier_normal_(C)
            nn.init.zeros_(c)
            nn.init.normal_(U, std=1.0 / math.sqrt(U.shape[0]))
            nn.init.normal_(V, std=0.01 / math.sqrt(self.rank))
            nn.init.normal_(B, std=0.01 / math.sqrt(self.rank))

    def zero_last_layer(self):
        with torch.no_grad():
            for p in (self.C[-1], self.c[-1], self.V[-1], self.B[-1]):
                p.zero_()

    def explicit_parameters(self, cond):
        z = self.code(cond)
        return [(C + torch.einsum("ir,br,ro->bio", U, z, V), c + z @ B)
                for C, c, U, V, B in zip(self.C, self.c, self.U, self.V, self.B)]

    def forward(self, x, cond, index=None):
        z = self._row_codes(cond, index)
        h = x
        last = len(self.shapes) - 1
        for k, (C, c, U, V, B) in enumerate(zip(self.C, self.c, self.U, self.V, self.B)):
            width, out = C.shape
            if out > width:  # widening (e.g. 8 -> 112): one GEMM on the narrow [h | (h.U) * z | z] . [C ; V ; B]
                h = torch.addmm(c, torch.cat([h, (h @ U) * z, z], dim=1), torch.cat([C, V, B], dim=0))
            else:  # two GEMMs: [h.C + c | h.U] = h.[C | U] + [c | 0], then + [(h.U) * z | z].[V ; B]
                both = torch.addmm(torch.cat([c, c.new_zeros(self.rank)]), h, torch.cat([C, U], dim=1))
                h = both[:, :out].addmm(torch.cat([both[:, out:] * z, z], dim=1), torch.cat([V, B], dim=0))
            if k < last or self.last_activation:
                h = self.dropout(torch.relu_(h))  # in place: h is this layer's own new tensor
        return h


GENERATORS = {"full": MetaLayers, "factored": FactoredMetaLayers}


def meta_layers(generator, *args, **kwargs):
    """The meta layers of kind ``generator`` (``meta_generator``: full | factored)."""
    try:
        cls = GENERATORS[str(generator or "full").lower()]
    except KeyError:
        raise ValueError(f"meta_generator must be one of {sorted(GENERATORS)}, not '{generator}'") from None
    return cls(*args, **kwargs)
