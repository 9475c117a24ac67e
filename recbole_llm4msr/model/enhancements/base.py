"""What an enhancement is: a module that plugs into a backbone's two hooks, for ANY backbone.

A :class:`~recbole_llm4msr.model.backbones.base.MultiScenarioBackbone` calls
``enhancement.transform_input(inputs) -> x`` before its backbone and ``enhancement.fuse_output(output, inputs)
-> logit`` after it. An enhancement only uses the interface every backbone exposes (``input_dim``,
``embedding_size``, ``num_scenarios``, :class:`BackboneInput`, :class:`BackboneOutput`), so adding a seventh
backbone needs no change here.
"""
import torch
from torch import nn

from recbole_llm4msr.layers import meta_layers
from recbole_llm4msr.layers.meta import GENERATORS
from recbole_llm4msr.settings import (
    SettingReaders,
    reader,
    setting_bool,
    setting_choice,
    setting_number,
    setting_sizes,
)


class Enhancement(SettingReaders, nn.Module):
    name = "none"
    knowledge_kinds = ()  # knowledge-store kinds ``prepare`` must provide before the model is built

    def __init__(self, backbone, config, dataset):
        super().__init__()

    def transform_input(self, inputs):
        return inputs.x

    def fuse_output(self, output, inputs):
        return output.logit

    def reset_parameters(self):
        """Called after the backbone's xavier initialisation (which would otherwise overwrite special inits)."""

    def summary(self):
        """A JSON-able summary of what the enhancement learned (written into the results file; measured effects
        are added by :func:`recbole_llm4msr.explain.interpret`)."""
        return {"enhancement": self.name}


class MetaFusion(Enhancement):
    """Hierarchical meta layers, "bottom + parallel", shared by LLM4MSR and DN; only the conditioning differs.

    * bottom: meta layers conditioned on :meth:`bottom_condition` transform the embedding ``x`` (widths
      ``meta_bottom_hidden_sizes`` then ``input_dim``) before the backbone;
    * parallel: meta layers conditioned on :meth:`parallel_condition` read the embedding ``x`` (widths
      ``meta_parallel_hidden_sizes`` then 1, no activation after the last unit: it is a logit) and are fused with the
      backbone's logit: ``sigmoid(a * h_parallel + (1 - a) * h_backbone)`` with a learnable ``a = sigmoid(alpha)``.

    A subclass sets ``use_bottom`` / ``use_parallel`` and the two condition methods. Row-wise conditions (users)
    run the low-rank GEMM form of :class:`MetaLayers`; per-scenario conditions generate the layers once per
    scenario and run each scenario group through plain linear layers.
    """

    use_bottom = True
    use_parallel = True
    setting_readers = {
        "meta_rank": reader(setting_number, kind=int, low=0),
        "meta_dropout": reader(setting_number, kind=float, low=0.0, high=1.0, default=0.0),
        # full: every entry generated; factored: C + U diag(z) V
        "meta_generator": reader(setting_choice, choices=tuple(GENERATORS), default="full"),
        "meta_residual": setting_bool,
        "meta_bottom_hidden_sizes": setting_sizes,
        "meta_parallel_hidden_sizes": setting_sizes,
        "fusion_alpha_init": reader(setting_number, kind=float, low=0.0, high=1.0, open_interval=True),
    }

    @classmethod
    def read_settings(cls, config):
        settings = super().read_settings(config)
        if settings["meta_dropout"] == 1.0:
            raise ValueError("meta_dropout must be below 1 (1 drops every unit), not 1.0")
        GENERATORS[settings["meta_generator"]].check_rank(settings["meta_rank"])  # factored needs a rank
        return settings

    def __init__(self, backbone, config, dataset, condition_dims, settings):
        """``settings``: what the subclass's :meth:`read_settings` returned (read once, by the subclass)."""
        super().__init__(backbone, config, dataset)
        rank, dropout, generator = settings["meta_rank"], settings["meta_dropout"], settings["meta_generator"]
        bottom_dim, parallel_dim = condition_dims
        self.bottom = self.parallel = None
        # meta_residual: x + MetaLayers(x) (no activation after the last layer, which starts at zero, so training
        # starts from the plain backbone); False is the paper's form MetaLayers(x) with a ReLU after every layer
        self.residual = settings["meta_residual"]
        if self.use_bottom:
            self.bottom = meta_layers(generator, bottom_dim, backbone.input_dim,
                                     settings["meta_bottom_hidden_sizes"] + [backbone.input_dim], rank, dropout,
                                     last_activation=not self.residual)
        if self.use_parallel:
            self.parallel = meta_layers(generator, parallel_dim, backbone.input_dim,
                                       settings["meta_parallel_hidden_sizes"] + [1], rank, dropout,
                                       last_activation=False)
            self.alpha = nn.Parameter(torch.logit(torch.tensor(settings["fusion_alpha_init"])))

    def reset_parameters(self):
        for meta in (self.bottom, self.parallel):
            if meta is not None:
                meta.reset_parameters()
        if self.residual and self.bottom is not None:
            self.bottom.zero_last_layer()

    @property
    def a(self):
        return torch.sigmoid(self.alpha) if self.parallel is not None else None

    def bottom_condition(self, inputs):
        """-> (cond, index, groups): ``cond`` [U, c] distinct conditioning vectors and ``index`` [B] the one each
        row uses (``index`` None: ``cond`` is row-aligned); or, with ``groups``, one vector per group of
        ``groups`` (e.g. per scenario)."""
        raise NotImplementedError

    def parallel_condition(self, inputs):
        """Same contract as :meth:`bottom_condition`."""
        raise NotImplementedError

    @staticmethod
    def _run(meta, x, cond, index, groups):
        return meta(x, cond, index) if groups is None else meta.forward_grouped(x, cond, groups)

    def transform_input(self, inputs):
        if self.bottom is None:
            return inputs.x
        out = self._run(self.bottom, inputs.x, *self.bottom_condition(inputs))
        return inputs.x + out if self.residual else out

    def fuse_output(self, output, inputs):
        if self.parallel is None:
            return output.logit
        h_parallel = self._run(self.parallel, inputs.x, *self.parallel_condition(inputs)).squeeze(-1)
        a = self.a
        return a * h_parallel + (1 - a) * output.logit

    def summary(self):
        out = super().summary()
        out["levels"] = [n for n, m in (("bottom", self.bottom), ("parallel", self.parallel)) if m is not None]
        out["residual"] = self.residual
        out["generator"] = type(self.bottom or self.parallel).__name__
        if self.parallel is not None:
            out["a"] = round(float(self.a.detach()), 6)
        return out
