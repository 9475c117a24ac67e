"""DN baseline: a dynamic network -- the same meta layers as LLM4MSR, conditioned on the learned scenario-id
embedding instead of LLM knowledge (scenario-specific generated parameters, no LLM; HierRec-style explicit
generator). Bottom and parallel levels as in LLM4MSR; ``dn_levels`` selects them."""
import torch

from recbole_llm4msr.model.enhancements.base import MetaFusion
from recbole_llm4msr.settings import reader, setting_subset

LEVELS = ("bottom", "parallel")


class DynamicNetwork(MetaFusion):
    name = "dn"
    setting_readers = {"dn_levels": reader(setting_subset, choices=LEVELS, default=LEVELS)}

    def __init__(self, backbone, config, dataset):
        settings = self.read_settings(config)
        levels = settings["dn_levels"]
        self.use_bottom, self.use_parallel = "bottom" in levels, "parallel" in levels
        d = backbone.embedding_size
        super().__init__(backbone, config, dataset, (d, d), settings)

    def condition(self, inputs):
        # the scenario field's learned embedding, one distinct vector per scenario (taken from the batch rows)
        # (all rows of a scenario carry the same embedding, so any row of it will do; absent scenarios are unused)
        rows = torch.arange(len(inputs.scenario), device=inputs.scenario.device)
        first = torch.zeros(inputs.num_scenarios, dtype=torch.long, device=rows.device).scatter_(0, inputs.scenario, rows)
        return inputs.scenario_embedding[first], None, inputs.groups

    bottom_condition = parallel_condition = condition
