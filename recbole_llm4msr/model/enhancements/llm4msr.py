"""LLM4MSR (Wang et al., CIKM 2024): hierarchical meta layers conditioned on frozen-LLM knowledge.

User-level meta layers (conditioned on the user's knowledge vector) sit at the bottom and transform the feature
embedding before the backbone; scenario-level meta layers (conditioned on the scenario's knowledge vector) run in
parallel to the backbone; ``sigmoid(a * h_s + (1 - a) * h)``. ``llm4msr_levels: [user, scenario]`` selects the
levels, so the ablations "w/o user-level" / "w/o scenario-level" are one flag each.

Knowledge comes from the store ``knowledge_store`` names, which ``prepare`` finds or builds before any model is
built (:mod:`recbole_llm4msr.prepare`); the constructor only aligns its vectors to RecBole's ids
(:func:`recbole_llm4msr.knowledge.loader.align`) and never runs an LLM. Users without a vector (cold start)
follow ``knowledge_fallback``: ``zeros`` (a zero vector, the layers still see the scenario through the backbone)
or ``scenario`` (the row's scenario knowledge vector in place of the user's).

Controls, to tell knowledge from extra layers (same architecture, same parameter count): ``knowledge_control:
shuffle`` gives every user another user's vector (a fixed seeded cycle, ``knowledge_control_seed``) and every
scenario another scenario's; ``zero`` gives every user the cold-start vector. A claim that knowledge helps must
beat ``shuffle``, not only the plain backbone.
"""
import torch

import logging

from recbole_llm4msr.knowledge.loader import align, control, open_store
from recbole_llm4msr.layers import KnowledgeTable
from recbole_llm4msr.model.enhancements.base import MetaFusion

LEVELS = ("user", "scenario")


def resolve_auto_norm(config, store):
    """``knowledge_norm: auto``: the normalisation whose user vectors score best on the validation neighbour probe
    (:func:`~recbole_llm4msr.knowledge.report.choose_norm`, kept in the store folder), written into the config as the
    concrete setting the model uses (and the log and the results file name). ``prepare()`` calls it before a model is
    built; a model built without ``prepare()`` (RecBole's own flow with a finished ``knowledge_store``) calls it
    itself. Reads the training and validation splits only."""
    from recbole_llm4msr.knowledge.files import DatasetFiles
    from recbole_llm4msr.knowledge.report import choose_norm
    from recbole_llm4msr.knowledge.spec import KnowledgeSpec

    logger = logging.getLogger()
    choice = choose_norm(store, DatasetFiles.from_spec(KnowledgeSpec.from_config(config)),
                         progress=lambda norm, auc: logger.info(f"knowledge_norm auto: {norm} probe AUC {auc}"))
    config["knowledge_norm"] = choice["chosen"]
    logger.info(f"knowledge_norm auto -> {choice['chosen']} (validation neighbour probe AUC {choice['auc']}, "
                f"{choice['valid_rows']} rows; kept in {store.path})")
    return choice["chosen"]


class LLM4MSR(MetaFusion):
    name = "llm4msr"
    knowledge_kinds = ("scenario", "user")  # what prepare() must provide before the model is built

    def __init__(self, backbone, config, dataset):
        levels = list(config["llm4msr_levels"] or [])
        unknown = [lv for lv in levels if lv not in LEVELS]
        if unknown or not levels:
            raise ValueError(f"llm4msr_levels must be a non-empty subset of {list(LEVELS)}, got {levels}")
        self.use_bottom, self.use_parallel = "user" in levels, "scenario" in levels
        self.fallback = config["knowledge_fallback"] or "zeros"
        if self.fallback not in ("zeros", "scenario"):
            raise ValueError(f"knowledge_fallback must be 'zeros' or 'scenario', not '{self.fallback}'")
        if not config["knowledge_store"]:
            raise ValueError("LLM4MSR needs a knowledge store, and models never build one: call "
                             "recbole_llm4msr.prepare.prepare(config) before building the model (run_recbole does), "
                             "or set knowledge_store to a finished store")
        store = open_store(config["knowledge_store"])
        norm = str(config["knowledge_norm"] or "none").lower()
        if norm == "auto":  # prepare() resolves it before a model is built; built without prepare(), the same here
            norm = resolve_auto_norm(config, store)
        users = align(store, "user", dataset.field2id_token[dataset.uid_field], expected_dim=config["knowledge_dim"],
                      memory=str(config["knowledge_memory"] or "auto").lower(), padding=True,
                      dataset=dataset.dataset_name, norm=norm)
        scenarios = align(store, "scenario", dataset.field2id_token[config["SCENARIO_FIELD"]], padding=True,
                          required=True)
        # controls (same architecture and parameters, no information): knowledge_control: shuffle | zero
        self.control = str(config["knowledge_control"] or "none").lower()
        seed = int(config["knowledge_control_seed"] or 0)
        users = control(users, self.control, seed)
        if self.control == "shuffle":
            scenarios = control(scenarios, "shuffle", seed)
        super().__init__(backbone, config, dataset, (store.dim, store.dim))
        self.uid_field = dataset.uid_field
        self.knowledge_info = {"path": store.path, "coverage": users.coverage, "dim": store.dim,
                               "memory": users.memory, "control": self.control}
        logging.getLogger().info(f"knowledge: {store.path} ({store.dim}-d, {users.coverage:.1%} of the dataset's "
                                 f"users have a vector; user table {users.memory})")
        # non-persistent: a checkpoint stays small and reloads the vectors from the store
        self.user_knowledge = KnowledgeTable(users)  # in memory or memory-mapped (knowledge_memory)
        self.register_buffer("scenario_knowledge", torch.from_numpy(scenarios.table[1:]), persistent=False)
        self._cache = {}  # evaluation: every user's code, every scenario's layers (_kept)
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
        if self._can_cache_codes():  # evaluation: every user's code once, then one lookup per row
            return self._user_codes(), uid, None
        users, index = torch.unique(uid, return_inverse=True)  # the bottleneck runs once per distinct user
        h = self.user_knowledge(users)
        if self.disable_user_knowledge:
            h = torch.zeros_like(h)
        return h, index, None

    def _evaluating(self):
        """Evaluation without gradients: what depends only on the frozen knowledge and the parameters is kept."""
        return not self.training and not torch.is_grad_enabled()

    def _can_cache_codes(self):
        return (self._evaluating() and not self.disable_user_knowledge and self.user_knowledge.memory == "load"
                and self.bottom.rank > 0)

    def _kept(self, name, tensors, build):
        """``build()``, computed once and kept while ``tensors`` are unchanged: the key holds each tensor's storage
        and version counter, so an optimizer step, ``load_state_dict`` or ``.to()`` recomputes; ``train()`` /
        ``eval()`` drop everything kept."""
        key = tuple((t.data_ptr(), t._version) for t in tensors)
        hit = self._cache.get(name)
        if hit is None or hit[0] != key:
            hit = self._cache[name] = (key, build())
        return hit[1]

    def _user_codes(self):
        """The bottleneck codes of every user's vector (row 0 and users without one: zeros): evaluation runs the
        bottleneck once per user, not once per batch."""
        table = self.user_knowledge.table
        return self._kept("user_codes", [table] + self.bottom.code_parameters(), lambda: self.bottom.codes(table))

    def train(self, mode=True):
        self._cache = {}
        return super().train(mode)

    def parallel_condition(self, inputs):
        if self._evaluating():  # every scenario's layers generated once per evaluation
            cond = self._kept("scenario_layers", [self.scenario_knowledge] + list(self.parallel.parameters()),
                              lambda: self.parallel.generated(self.scenario_knowledge))
            return cond, None, inputs.groups
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
