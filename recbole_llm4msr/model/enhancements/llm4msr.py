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

``knowledge_out_of_fold: K`` (K >= 2; default 0, off): the user vector of an item-mean store is the mean of the user's
liked training items, so a positive training row reads a vector made partly from its own label. With K folds
(:func:`~recbole_llm4msr.knowledge.loader.fold_of` of the row's user and item) a training row reads its user's vector
rebuilt without its fold's liked items (:func:`~recbole_llm4msr.knowledge.loader.out_of_fold_means`, normalised as
the store's); evaluation reads the store's vector, as without the option. ``knowledge_out_of_fold_mode: shifted`` is
its control: each training row reads the next fold's vector instead (the same share of the user's items left out,
but the row's own item kept), which separates what leaving out the row's own label does from what reading a vector
of fewer items does.
"""
import logging

import torch

from recbole_llm4msr.knowledge.loader import (
    CONTROLS,
    NORMS,
    align,
    control,
    controlled_table,
    fold_of,
    normalization,
    open_store,
    out_of_fold_means,
)
from recbole_llm4msr.layers import KnowledgeTable
from recbole_llm4msr.model.enhancements.base import MetaFusion
from recbole_llm4msr.settings import (
    reader,
    setting_choice,
    setting_number,
    setting_subset,
)

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
    setting_readers = {
        "llm4msr_levels": reader(setting_subset, choices=LEVELS, default=LEVELS),
        "knowledge_fallback": reader(setting_choice, choices=("zeros", "scenario"), default="zeros"),
        "knowledge_norm": reader(setting_choice, choices=NORMS + ("auto",), default="none"),
        "knowledge_memory": reader(setting_choice, choices=("auto", "load", "mmap"), default="auto"),
        "knowledge_out_of_fold": reader(setting_number, kind=int, low=0, default=0),
        "knowledge_out_of_fold_mode": reader(setting_choice, choices=("out", "shifted"), default="out"),
        "knowledge_control": reader(setting_choice, choices=CONTROLS, default="none"),
        "knowledge_control_seed": reader(setting_number, kind=int, default=0),
    }

    @classmethod
    def read_settings(cls, config):
        settings = super().read_settings(config)
        if settings["knowledge_out_of_fold"] == 1:
            raise ValueError("knowledge_out_of_fold must be 0 (off) or a number of folds of at least 2, not 1")
        return settings

    @classmethod
    def check_config(cls, config):
        """The meta layers' and the knowledge's settings, and the knowledge store's own options (the LLM, its mode,
        pooling, ...: :class:`~recbole_llm4msr.knowledge.spec.KnowledgeSpec`), before any store is built."""
        from recbole_llm4msr.knowledge.spec import KnowledgeSpec

        super().check_config(config)
        KnowledgeSpec.from_config(config)

    def __init__(self, backbone, config, dataset):
        settings = self.read_settings(config)
        levels = settings["llm4msr_levels"]
        self.use_bottom, self.use_parallel = "user" in levels, "scenario" in levels
        self.fallback = settings["knowledge_fallback"]
        if not config["knowledge_store"]:
            raise ValueError("LLM4MSR needs a knowledge store, and models never build one: call "
                             "recbole_llm4msr.prepare.prepare(config) before building the model (run_recbole does), "
                             "or set knowledge_store to a finished store")
        store = open_store(config["knowledge_store"])
        norm = settings["knowledge_norm"]
        if norm == "auto":  # prepare() resolves it before a model is built; built without prepare(), the same here
            norm = resolve_auto_norm(config, store)
        users = align(store, "user", dataset.field2id_token[dataset.uid_field], expected_dim=config["knowledge_dim"],
                      memory=settings["knowledge_memory"], padding=True, dataset=dataset.dataset_name, norm=norm)
        scenarios = align(store, "scenario", dataset.field2id_token[config["SCENARIO_FIELD"]], padding=True,
                          required=True)
        self.out_of_fold = settings["knowledge_out_of_fold"]
        self.fold_shift = {"out": 0, "shifted": 1}[settings["knowledge_out_of_fold_mode"]]
        folds = self._out_of_fold_tables(store, dataset, users, norm, config) if self.out_of_fold else None
        # controls (same architecture and parameters, no information): knowledge_control: shuffle | zero
        self.control = settings["knowledge_control"]
        seed = settings["knowledge_control_seed"]
        if folds is not None:  # the same cycle as the table's: a user's fold vectors move with their vector
            folds = controlled_table(folds, users.has, self.control, seed)
        users = control(users, self.control, seed)
        if self.control == "shuffle":
            scenarios = control(scenarios, "shuffle", seed)
        super().__init__(backbone, config, dataset, (store.dim, store.dim), settings)
        self.uid_field, self.iid_field = dataset.uid_field, dataset.iid_field
        self.knowledge_info = {"path": store.path, "coverage": users.coverage, "dim": store.dim,
                               "memory": users.memory, "control": self.control, "out_of_fold": self.out_of_fold}
        logging.getLogger().info(f"knowledge: {store.path} ({store.dim}-d, {users.coverage:.1%} of the dataset's "
                                 f"users have a vector; user table {users.memory})")
        # non-persistent: a checkpoint stays small and reloads the vectors from the store
        self.user_knowledge = KnowledgeTable(users)  # in memory or memory-mapped (knowledge_memory)
        self.register_buffer("scenario_knowledge", torch.from_numpy(scenarios.table[1:]), persistent=False)
        if folds is not None:  # [K, users, d]: training rows read these (non-persistent, as the table)
            self.register_buffer("fold_knowledge", torch.from_numpy(folds), persistent=False)
        self._cache = {}  # evaluation: every user's code, every scenario's layers (_kept)
        self.disable_user_knowledge = False  # interpretation: what the prediction is without the user's vector

    def _out_of_fold_tables(self, store, dataset, users, norm, config):
        """[K, users, d]: each user's vector without each fold's liked training rows (``knowledge_out_of_fold``)."""
        k = self.out_of_fold
        if store.header.get("user_vector") != "items" or "item" not in (store.header.get("kinds") or {}):
            raise ValueError(f"knowledge_out_of_fold rebuilds user vectors as the mean of their liked items' vectors, "
                             f"and the store {store.path} does not hold them that way (user_vector "
                             f"{store.header.get('user_vector')!r}): use a store made with knowledge_user_vector: items "
                             f"(the default) or set knowledge_out_of_fold: 0")
        if users.memory != "load":
            raise ValueError("knowledge_out_of_fold keeps a user table per fold in memory: set knowledge_memory: load")
        feat = dataset.inter_feat
        users_of_rows = feat[dataset.uid_field].numpy().astype("int64")
        # liked rows of users with a vector (a user without one stays cold start, in training as in evaluation)
        liked = (feat[config["LABEL_FIELD"]].numpy() > 0.5) & users.has[users_of_rows]
        uid = users_of_rows[liked]
        iid = feat[dataset.iid_field].numpy()[liked].astype("int64")
        items = dataset.field2id_token[dataset.iid_field][iid]
        return out_of_fold_means(store, len(users.has), uid, items, fold_of(uid, iid, k), k,
                                 normalization(store, "user", norm), base=users.table)

    def _training_out_of_fold(self):
        return self.out_of_fold and self.training

    def _fold_rows(self, inputs):
        """Each training row's user vector without its fold's liked items, [B, d]."""
        uid = inputs.interaction[self.uid_field].long()
        fold = fold_of(uid, inputs.interaction[self.iid_field].long(), self.out_of_fold)
        # shifted (the control): the next fold's table -- as few of the user's items, the row's own item kept
        return self.fold_knowledge[(fold + self.fold_shift) % self.out_of_fold, uid]

    def user_condition_rows(self, inputs):
        """Each row's user-level conditioning vector, [B, d]: the user's knowledge, or the fallback."""
        uid = inputs.interaction[self.uid_field].long()
        # row 0 / users without a vector: zeros
        h = self._fold_rows(inputs) if self._training_out_of_fold() else self.user_knowledge(uid)
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
        if self.fallback == "scenario" or self._training_out_of_fold():  # a row's vector depends on more than its user
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
