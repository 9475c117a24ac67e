"""The base class of every multi-scenario backbone, and the interface enhancements build on.

A backbone is a RecBole context-aware model (:class:`~recbole.model.abstract_recommender.ContextRecommender`) in
which *scenario = task*: one tower per scenario, and each row is scored by its own scenario's tower. Its forward
pass has three parts, and only the middle one differs between backbones::

    inputs = self.embed(interaction)        # what feeds it: every feature RecBole embeds, flattened
    x = self.transform_input(inputs)        # hook: identity here; e.g. LLM4MSR's user-level meta layers
    out = self.backbone(x, inputs)          # the backbone proper -> BackboneOutput(logit, representation)
    logit = self.fuse_output(out, inputs)   # hook: out.logit here; e.g. LLM4MSR's parallel scenario branch

Interface for subclasses and for enhancements:

* ``self.input_dim``: the width of ``x`` that :meth:`backbone` accepts (``num_fields * embedding_size``). A
  transform must return the same width.
* :meth:`embed` returns :class:`BackboneInput`: ``x`` ``[B, input_dim]`` (the flattened field embeddings),
  ``fields`` ``[B, F, D]``, ``scenario`` ``[B]`` (0-based scenario index), ``scenario_embedding`` ``[B, D]`` and the
  raw ``interaction``.
* :meth:`backbone` takes an already transformed ``x`` and returns :class:`BackboneOutput`: ``logit`` ``[B]``
  (before the sigmoid) and ``representation`` ``[B, H]``, the vector the sample's scenario tower reads (STAR:
  its last hidden layer). It must not look at ``inputs.x``, only at its argument ``x``.
* :meth:`transform_input` / :meth:`fuse_output` are the two places an enhancement plugs in; they default to
  identity. ``config["enhancement"]`` (``none`` | ``llm4msr`` | ``dn`` | ``ep``) picks the enhancement module
  (:mod:`recbole_llm4msr.model.enhancements`), built before the subclass's layers, so it can only rely on the
  attributes set here.

The scenario field (``SCENARIO_FIELD``) routes rows to towers. Whether its embedding is also part of ``x`` is the
config key ``scenario_as_feature`` (default False: the shared part sees the other features; blocks that need the
scenario, e.g. STAR's auxiliary network, read ``scenario_embedding``).
"""
from dataclasses import dataclass
from typing import Any

import torch
from recbole.model.abstract_recommender import ContextRecommender
from recbole.model.init import xavier_normal_initialization
from recbole.utils import InputType
from torch import nn

from recbole_llm4msr.layers import ScenarioGroups
from recbole_llm4msr.model.enhancements import build_enhancement, enhancement_class
from recbole_llm4msr.settings import SettingReaders, reader, setting_bool, setting_number


@dataclass
class BackboneInput:
    x: torch.Tensor
    fields: torch.Tensor
    scenario: torch.Tensor
    scenario_embedding: torch.Tensor
    interaction: Any
    _groups: ScenarioGroups = None
    num_scenarios: int = 0

    @property
    def groups(self):
        """The batch's rows grouped by scenario (built once per batch)."""
        if self._groups is None:
            self._groups = ScenarioGroups(self.scenario, self.num_scenarios)
        return self._groups


@dataclass
class BackboneOutput:
    logit: torch.Tensor
    representation: torch.Tensor


class MultiScenarioBackbone(SettingReaders, ContextRecommender):
    """Base class: embeddings, scenario routing, loss and prediction. Subclasses implement :meth:`backbone`.

    ``setting_readers`` (here and in each subclass) lists the settings a backbone reads, each with its reader
    (:mod:`recbole_llm4msr.settings`): the constructor takes the checked values from :meth:`read_settings`
    (``self.model_settings``), and :meth:`check_config` checks them, and the enhancement's, before any data is
    loaded."""

    input_type = InputType.POINTWISE
    fixed_enhancement = None  # set by the <Backbone>_<ENHANCEMENT> variants (recbole_llm4msr.model.variants)
    setting_readers = {
        "scenario_as_feature": setting_bool,
        "dropout_prob": reader(setting_number, kind=float, low=0.0, high=1.0, default=0.0),
    }

    @classmethod
    def check_config(cls, config):
        """Check the values of every setting this model reads (the backbone's and its enhancement's) in ``config``,
        with no dataset: ``llm4msr-compare`` and ``run_recbole`` call it before any data is loaded or knowledge store
        built, so a bad value stops them at once instead of failing each run's model build."""
        cls.read_settings(config)
        enhancement = enhancement_class(config["enhancement"])
        if enhancement is not None:
            enhancement.check_config(config)

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.model_settings = self.read_settings(config)
        del self.first_order_linear  # ContextRecommender's FM first-order term; no backbone uses it
        self.scenario_field = config["SCENARIO_FIELD"]
        if self.scenario_field not in self.token_field_names:
            raise ValueError(
                f"{type(self).__name__}: SCENARIO_FIELD '{self.scenario_field}' is not a loaded token field of "
                f"dataset '{config['dataset']}' (token fields: {self.token_field_names}); list it under load_col.inter"
            )
        self.num_scenarios = dataset.num(self.scenario_field) - 1  # internal ids 1..n, 0 is padding
        self.scenario_names = list(dataset.field2id_token[self.scenario_field][1:])
        # position of the scenario field in concat_embed_input_fields' [token_seq fields, token fields, floats]
        self._scenario_pos = len(self.token_seq_field_names) + self.token_field_names.index(self.scenario_field)
        self.scenario_as_feature = self.model_settings["scenario_as_feature"]
        self.num_input_fields = self.num_feature_field - (0 if self.scenario_as_feature else 1)
        if self.num_input_fields < 1:
            raise ValueError(f"{type(self).__name__}: no input feature besides the scenario; check load_col")
        self.input_dim = self.num_input_fields * self.embedding_size
        self.dropout_prob = self.model_settings["dropout_prob"]
        self.loss = nn.BCEWithLogitsLoss()
        self.enhancement = build_enhancement(config["enhancement"], self, config, dataset)

    def init_weights(self):
        """RecBole's xavier-normal init for Linear / Embedding layers; call at the end of a subclass __init__."""
        self.apply(xavier_normal_initialization)
        if self.enhancement is not None:
            self.enhancement.reset_parameters()

    # ------------------------------------------------------------------ what feeds the backbone
    def embed(self, interaction):
        fields = self.concat_embed_input_fields(interaction)  # [B, F, D]
        scenario_embedding = fields[:, self._scenario_pos]
        if not self.scenario_as_feature:
            keep = [i for i in range(fields.shape[1]) if i != self._scenario_pos]
            fields = fields[:, keep]
        scenario = interaction[self.scenario_field].long() - 1
        return BackboneInput(
            x=fields.flatten(1), fields=fields, scenario=scenario, scenario_embedding=scenario_embedding,
            interaction=interaction, num_scenarios=self.num_scenarios,
        )

    def transform_input(self, inputs):
        return inputs.x if self.enhancement is None else self.enhancement.transform_input(inputs)

    def fuse_output(self, output, inputs):
        return output.logit if self.enhancement is None else self.enhancement.fuse_output(output, inputs)

    # ------------------------------------------------------------------ the backbone proper
    def backbone(self, x, inputs):
        raise NotImplementedError

    # ------------------------------------------------------------------ RecBole's interface
    def forward(self, interaction):
        inputs = self.embed(interaction)
        output = self.backbone(self.transform_input(inputs), inputs)
        return self.fuse_output(output, inputs)

    def calculate_loss(self, interaction):
        return self.loss(self.forward(interaction), interaction[self.LABEL])

    def predict(self, interaction):
        return torch.sigmoid(self.forward(interaction))
