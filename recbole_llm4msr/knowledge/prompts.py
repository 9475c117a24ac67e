"""Scenario-level and user-level prompts, from editable templates.

Templates are ``string.Template`` files (``$name`` placeholders): ``scenario.txt`` gets ``$dataset``,
``$scenario_table``, ``$scenario`` and ``$description``; ``user.txt`` gets ``$dataset``, ``$scenarios`` (every
scenario with its description) and ``$history``. Sentence encoders (``llm_mode: encoder``) default to
``templates/encoder/``, whose user prompt is the history alone. Put what is the same for every user first: that part is computed
once and its KV cache reused. The default ones live in
``recbole_llm4msr/knowledge/templates/``; ``template_dir`` points at your own copies. The store's fingerprint
(:mod:`recbole_llm4msr.knowledge.fingerprint`) includes :attr:`PromptBuilder.template_hash` (templates + prompt
settings), the rendered item texts and the descriptions, so changing any of them never mixes vectors.

User prompts list only the *positive* interactions of the converter's fixed *training* split (never valid/test:
no label leakage), grouped by scenario, most recent first, at most ``max_items_per_scenario`` per scenario, and
the oldest items are dropped until the prompt fits ``max_prompt_tokens``.
"""
import hashlib
import json
import os
from string import Template

from dataset_converters.writer import scenario_stats

TEMPLATE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")
# a sentence encoder embeds all of its text: the user prompt is the history alone (instructions shared by every user
# only pull the vectors together); files missing there (scenario.txt) come from TEMPLATE_DIR
ENCODER_TEMPLATE_DIR = os.path.join(TEMPLATE_DIR, "encoder")


def default_templates(mode):
    """(template folder, fallback folder) used when ``template_dir`` is not set, per extraction mode."""
    return (ENCODER_TEMPLATE_DIR, TEMPLATE_DIR) if mode == "encoder" else (TEMPLATE_DIR, None)


def _approx_tokens(text):
    return int(len(text) / 3.5) + 1


class PromptBuilder:
    def __init__(self, files, template_dir=None, max_items_per_scenario=10, max_prompt_tokens=320,
                 count_tokens=None, fallback_dir=None):
        self.files = files
        self.template_dir = template_dir or TEMPLATE_DIR
        self.templates = {}
        for kind in ("scenario", "user"):
            path = os.path.join(self.template_dir, f"{kind}.txt")
            if not os.path.isfile(path) and fallback_dir:
                path = os.path.join(fallback_dir, f"{kind}.txt")
            if not os.path.isfile(path):
                raise FileNotFoundError(f"prompt template {path} is missing (copy {TEMPLATE_DIR}/{kind}.txt there)")
            with open(path, encoding="utf-8") as f:
                self.templates[kind] = f.read().strip()
        self.max_items_per_scenario = int(max_items_per_scenario)
        self.max_prompt_tokens = int(max_prompt_tokens)
        self.count_tokens = count_tokens or _approx_tokens
        self.inter = files.train_interactions()
        self.item_text = files.item_texts()
        self.scenarios = sorted(self.inter["scenario"].unique().tolist(), key=str)
        self._histories = None
        self._positive_items = None
        self.descriptions = dict(files.config.get("scenario_descriptions") or {})
        descriptions = self.descriptions
        self._scenario_list = "\n".join(
            f"- {s}: {descriptions[s]}" if s in descriptions else f"- {s}" for s in self.scenarios)

    @property
    def template_hash(self):
        payload = json.dumps({"templates": self.templates, "max_items": self.max_items_per_scenario,
                              "max_tokens": self.max_prompt_tokens}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]

    # ------------------------------------------------------------------ scenario level
    def scenario_statistics(self):
        return scenario_stats(self.inter, "user", "item", "label", "scenario")["scenarios"]

    def scenario_prompts(self):
        """One prompt per scenario: every scenario's statistics and description, focused on that scenario."""
        stats = self.scenario_statistics()
        descriptions = self.descriptions
        table = "\n".join(
            f"- {name}: {s['interactions']:,} interactions, {s['users']:,} users, {s['items']:,} items, "
            f"sparsity {s['sparsity']:.4f}, click-through rate {s['positive_ratio']:.3f}"
            + (f"; {descriptions[name]}" if name in descriptions else "")
            for name, s in stats.items()
        )
        return {
            name: Template(self.templates["scenario"]).safe_substitute(
                dataset=self.files.name, scenario_table=table, scenario=name,
                description=descriptions.get(name, f"the scenario named {name}"))
            for name in stats
        }

    # ------------------------------------------------------------------ user level
    def user_histories(self):
        """user -> {scenario: [item texts, most recent first]} from the training positives (uncapped; computed
        once per builder)."""
        if self._histories is None:
            self._histories = self._build_histories()
        return self._histories

    def _build_histories(self):
        pos = self.inter[self.inter["label"] > 0.5]
        if "timestamp" in pos.columns:
            pos = pos.sort_values("timestamp", ascending=False, kind="stable")
        else:
            pos = pos.iloc[::-1]  # no timestamps: later rows are taken as more recent
        histories = {user: {} for user in self.inter["user"].unique()}
        for user, scen, item in zip(pos["user"], pos["scenario"], pos["item"]):
            histories[user].setdefault(scen, []).append(self.item_text.get(item) or f"item {item}")
        return histories

    def users(self):
        return list(self.user_histories())

    def user_positive_items(self):
        """user -> the item tokens (str) of the user's training positives, every scenario, repeats kept (the
        ``user_vector: items`` recipe); every user of the split is a key (``[]`` without positives)."""
        if self._positive_items is None:
            pos = self.inter[self.inter["label"] > 0.5]
            out = {user: [] for user in self.inter["user"].unique()}
            for user, item in zip(pos["user"], pos["item"]):
                out[user].append(str(item))
            self._positive_items = out
        return self._positive_items

    def _render_user(self, per_scenario):
        lines = []
        for scen in self.scenarios:
            items = per_scenario.get(scen)
            if items:
                lines.append(f"Scenario {scen}: " + "; ".join(items))
        history = "\n".join(lines) if lines else "(no positive interactions recorded)"
        return Template(self.templates["user"]).safe_substitute(history=history, dataset=self.files.name,
                                                                scenarios=self._scenario_list)

    def user_prompt(self, history):
        per = {s: list(items[: self.max_items_per_scenario]) for s, items in history.items()}
        text = self._render_user(per)
        while self.count_tokens(text) > self.max_prompt_tokens:
            longest = max(per, key=lambda s: len(per[s]), default=None)
            if longest is None or not per[longest]:
                break  # only the template is left
            per[longest].pop()  # the oldest item of the scenario with the most items
            if not per[longest]:
                del per[longest]
            text = self._render_user(per)
        return text

    def user_prompts(self, users=None):
        """user token -> prompt, for ``users`` (default: every user of the training split)."""
        empty = self.count_tokens(self._render_user({}))
        if empty >= self.max_prompt_tokens:
            raise ValueError(f"max_prompt_tokens={self.max_prompt_tokens} leaves no room for a user's items: the user "
                             f"template alone takes {empty} tokens with this tokenizer; raise max_prompt_tokens "
                             f"(prompt_max_tokens in the model config) or shorten {self.template_dir}/user.txt")
        histories = self.user_histories()
        if users is None:
            users = list(histories)
        return {u: self.user_prompt(histories.get(u, {})) for u in users}
