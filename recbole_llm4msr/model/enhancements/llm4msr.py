"""LLM4MSR (Wang et al., CIKM 2024): hierarchical meta layers conditioned on frozen-LLM knowledge.

User-level meta layers (conditioned on the user's knowledge vector) sit at the bottom and transform the feature
embedding before the backbone; scenario-level meta layers (conditioned on the scenario's knowledge vector) run in
parallel to the backbone; ``sigmoid(a * h_s + (1 - a) * h)``. ``llm4msr_levels: [user, scenario]`` selects the
levels, so the ablations "w/o user-level" / "w/o scenario-level" are one flag each.

Knowledge comes from the knowledge store through :func:`recbole_llm4msr.knowledge.loader.load_for_model` (built
on first use with the embedded LLM if missing); training never runs the LLM. Users without a vector (cold start)
follow ``knowledge_fallback``: ``zeros`` (a zero vector, the layers still see the scenario through the backbone)
or ``scenario`` (the row's scenario knowledge vector in place of the user's).
"""
import torch

from recbole_llm4msr.distributed import all_reduce_sum, real_row_mask
from recbole_llm4msr.knowledge.loader import UserKnowledge, load_for_model
from recbole_llm4msr.model.enhancements.base import MetaFusion

LEVELS = ("user", "scenario")


class LLM4MSR(MetaFusion):
    name = "llm4msr"

    def __init__(self, backbone, config, dataset):
        levels = list(config["llm4msr_levels"] or [])
        unknown = [lv for lv in levels if lv not in LEVELS]
        if unknown or not levels:
            raise ValueError(f"llm4msr_levels must be a non-empty subset of {list(LEVELS)}, got {levels}")
        self.use_bottom, self.use_parallel = "user" in levels, "scenario" in levels
        self.fallback = config["knowledge_fallback"] or "zeros"
        if self.fallback not in ("zeros", "scenario"):
            raise ValueError(f"knowledge_fallback must be 'zeros' or 'scenario', not '{self.fallback}'")
        knowledge = load_for_model(config, dataset)
        dim = knowledge["dim"]
        super().__init__(backbone, config, dataset, (dim, dim))
        self.uid_field = dataset.uid_field
        self.knowledge_info = {k: knowledge[k] for k in ("path", "coverage", "dim", "memory")}
        # non-persistent: a checkpoint stays small and reloads the vectors from the store
        self.user_knowledge = UserKnowledge(knowledge)  # in memory or memory-mapped (knowledge_memory)
        self.register_buffer("scenario_knowledge", knowledge["scenarios"], persistent=False)
        self.disable_user_knowledge = False  # interpretation: what the prediction is without the user's vector

    def user_condition_rows(self, inputs):
        """Each row's user-level conditioning vector, [B, d]: the user's knowledge, or the fallback."""
        uid = inputs.interaction[self.uid_field].long()
        h = self.user_knowledge(uid)  # row 0 / users without a vector: zeros
        if self.disable_user_knowledge:
            has = torch.zeros_like(self.user_knowledge.has[uid])
            h = torch.zeros_like(h)
        else:
            has = self.user_knowledge.has[uid]
        if self.fallback == "scenario":
            h = torch.where(has.unsqueeze(-1), h, self.scenario_knowledge[inputs.scenario])
        return h

    def bottom_condition(self, inputs):
        uid = inputs.interaction[self.uid_field].long()
        if self.fallback == "scenario":  # a cold user's vector depends on the row's scenario
            return self.user_condition_rows(inputs), None, None
        users, index = torch.unique(uid, return_inverse=True)  # the bottleneck runs once per distinct user
        h = self.user_knowledge(users)
        if self.disable_user_knowledge:
            h = torch.zeros_like(h)
        return h, index, None

    def parallel_condition(self, inputs):
        return self.scenario_knowledge, None, inputs.groups

    def summary(self):
        return dict(super().summary(), knowledge=self.knowledge_info, fallback=self.fallback)

    @torch.no_grad()
    def user_branch_effect(self, model, interaction):
        """Predictions with the user's knowledge and without it (fallback for everyone), for the same rows."""
        with_user = model.predict(interaction)
        self.disable_user_knowledge = True
        try:
            without = model.predict(interaction)
        finally:
            self.disable_user_knowledge = False
        return with_user, without

    def interpret(self, model, eval_data):
        """Adds, per scenario, the mean |p(with the user's knowledge) - p(without)| on ``eval_data``: how much the
        user-level branch moves predictions (0 when the level is ablated)."""
        out = self.summary()
        if self.bottom is None:
            return out
        was_training = model.training
        model.eval()
        names = model.scenario_names
        total = torch.zeros(len(names), dtype=torch.float64)
        count = torch.zeros(len(names), dtype=torch.float64)
        real = real_row_mask(eval_data)  # DDP: this rank's shard, without the sampler's padding rows
        seen = 0
        for batch in eval_data:
            interaction = batch[0].to(self.scenario_knowledge.device)
            p1, p0 = self.user_branch_effect(model, interaction)
            scen = (interaction[model.scenario_field].long() - 1).cpu()
            weight = torch.ones_like(scen, dtype=torch.float64)
            if real is not None:
                weight = real[seen:seen + len(scen)].double()
            seen += len(scen)
            total.index_add_(0, scen, (p1 - p0).abs().double().cpu() * weight)
            count.index_add_(0, scen, weight)
        all_reduce_sum(total)
        all_reduce_sum(count)
        model.train(was_training)
        out["user_branch_effect"] = {
            name: round(float(total[k] / count[k]), 6) for k, name in enumerate(names) if count[k] > 0
        }
        return out
