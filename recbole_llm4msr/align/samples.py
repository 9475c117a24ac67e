"""Recommendation signals written as natural-language samples (after Cao et al., "Aligning Large Language Models
with Recommendation Knowledge", NAACL 2024 Findings). The paper's templates are not available: these are ours.

Every sample is built from the **training split only** (the histories the knowledge prompts use), never names a
user id, and says which scenario it is about. A user's history is their training positives in one scenario, in
order (oldest first), the most recent ``max_history``. Negatives are the user's own training negatives in that
scenario (label 0: a shown-but-not-clicked item, or a converter's sampled negative), so a negative can never be a
held-out positive of the user; a user without one there gives no sample that needs one (``bpr``, ``rank``,
``click``'s "no", ``listwise``). (Until session 17 such a user got another item of the scenario, which could be one of
their held-out positives.)

=========  ==========================================================================================
task       prompt -> answer
=========  ==========================================================================================
``mim``    masked item modelling: "In the office scenario the user bought, oldest first: A; B; [MASK]; D.
           Which item is [MASK]?" -> "C"
``bpr``    pairwise preference: "... bought: A; B; C. Which of these two items did the user also buy?
           (1) X (2) Y" -> the title of the one they bought
``mlm``    masked words of the title of an item the user bought -> the masked words, comma-separated
``next``   "... bought, in this order: A; B. What did the user buy next?" -> "C"
``rank``   "... bought: A; B. Rank these candidates from most to least likely: (1) .. (4) .." -> the
           candidate numbers, the bought one first, then the others in listed order ("3, 1, 2, 4")
``click``  "... bought: A; B. Would the user buy X? Answer yes or no." -> "yes" / "no" (half each)
``listwise`` the ``next`` question with up to ``listwise_negatives`` of the user's own training negatives in the
           scenario (no other items: never a held-out positive) beside its answer: trained not on the
           answer's tokens but as the ranker is evaluated -- a softmax over the candidates' answer
           log-likelihoods, the bought item first (:func:`recbole_llm4msr.align.finetune.listwise_scores`)
=========  ==========================================================================================

The first six tasks are language modelling on text (the paper's kind of sample); ``listwise`` is our addition (not in
the paper): the same natural-language question, with the evaluation's own objective -- which candidate's title the
model finds most likely after the history -- as its loss.

``candidate_popularity`` (our addition, off by default: ``none``): ``words`` writes each *candidate* item (an answer,
a ``bpr`` / ``rank`` option, the ``click`` item, a ``listwise`` negative, and the ranker's candidates) as its title and
how many other customers bought it in the scenario, in words: "tape dispenser (a bestseller)". The level is the item's
count of distinct other buyers among the scenario's training positives (the user's own purchase never counts, so a
training answer is written as a held-out one is) against the scenario's quantiles of those counts over items bought at
least once (:data:`POPULARITY_LEVELS`). A title alone does not say how often an item sells, which popularity's ranker
reads; with this setting the LLM reads it too, and the question becomes whether it adds the history to it. History
items are written as before.
"""
import bisect
import random
from collections import defaultdict
from dataclasses import dataclass

# (upper quantile of the scenario's non-zero counts, words); 0 other buyers has its own words, above the last: LAST
POPULARITY_LEVELS = ((0.5, "rarely bought"), (0.75, "sometimes bought"), (0.9, "often bought"), (0.95, "popular"),
                     (0.98, "very popular"), (0.99, "a bestseller"))
POPULARITY_NONE, POPULARITY_LAST = "not bought by other customers", "a top bestseller"
POPULARITY_WORDS = (POPULARITY_NONE, *(w for _, w in POPULARITY_LEVELS), POPULARITY_LAST)  # least to most bought
CANDIDATE_POPULARITY = ("none", "words")
TASKS = ("mim", "bpr", "mlm", "next", "rank", "click", "listwise")
DEFAULT_TASKS = ("mim", "bpr", "mlm", "next", "rank", "click")  # the paper's kinds of sample
MASK = "[MASK]"


class SampleError(ValueError):
    """Samples cannot be built (no item text, an unknown task, ...); the message says what to do."""


@dataclass
class Sample:
    task: str
    user: str
    scenario: str
    prompt: str
    answer: str
    negatives: tuple = ()   # ``listwise`` only: texts of items the user did not buy, scored against the answer


class SampleBuilder:
    def __init__(self, files, seed=0, max_history=10, allow_id_text=False, logger=None, listwise_negatives=4,
                 candidate_popularity="none"):
        self.files, self.rng, self.max_history = files, random.Random(seed), int(max_history)
        if candidate_popularity not in CANDIDATE_POPULARITY:
            raise SampleError(f"candidate_popularity must be one of {', '.join(CANDIDATE_POPULARITY)}, not "
                              f"'{candidate_popularity}'")
        self.candidate_popularity = candidate_popularity
        self.listwise_negatives = int(listwise_negatives)
        if self.listwise_negatives < 1:
            raise SampleError(f"listwise_negatives must be at least 1, not {listwise_negatives}")
        texts = files.item_texts()
        if not texts:
            if not allow_id_text:
                raise SampleError(f"dataset '{files.name}' has no item text (item_text_fields in {files.folder}/"
                                  f"{files.name}.yaml, read from {files.item_file}): an LLM learns nothing from bare "
                                  f"ids. Add item texts, or pass --allow_id_text to write items as 'item <id>'")
            if logger is not None:
                logger.warning(f"dataset '{files.name}' has no item text: items are written as 'item <id>'")
        self.text = lambda item: texts.get(item) or f"item {item}"
        inter = files.train_interactions()
        if "timestamp" in inter.columns:
            inter = inter.sort_values("timestamp", kind="stable")
        self.positives = defaultdict(lambda: defaultdict(list))   # user -> scenario -> [items, oldest first]
        self.negatives = defaultdict(lambda: defaultdict(list))
        self.pool = defaultdict(set)
        for user, item, label, scen in zip(inter["user"], inter["item"], inter["label"], inter["scenario"]):
            (self.positives if label > 0.5 else self.negatives)[user][scen].append(item)
            self.pool[scen].add(item)
        self.pool = {s: sorted(p, key=str) for s, p in self.pool.items()}
        self.bought = {u: {i for items in per.values() for i in items} for u, per in self.positives.items()}
        self.users = sorted(self.positives, key=str)
        self.buyers = defaultdict(lambda: defaultdict(set))   # scenario -> item -> users with a training positive
        for user, per in self.positives.items():
            for scen, items in per.items():
                for item in items:
                    self.buyers[scen][item].add(user)
        self.popularity_cuts = {}   # scenario -> [count thresholds of POPULARITY_LEVELS]
        for scen, per in self.buyers.items():
            counts = sorted(len(users) for users in per.values())
            self.popularity_cuts[scen] = [counts[min(len(counts) - 1, int(q * len(counts)))]
                                          for q, _ in POPULARITY_LEVELS]

    def popularity_level(self, item, scen, user=None):
        """How many customers other than ``user`` bought ``item`` in ``scen`` (training split), as the index of its
        words in :data:`POPULARITY_WORDS` (0: none; then the first cut at or above the count; past the last: LAST)."""
        buyers = self.buyers.get(scen, {}).get(item, ())
        count = len(buyers) - (user in buyers)
        return 0 if count == 0 else 1 + bisect.bisect_left(self.popularity_cuts[scen], count)

    def popularity_words(self, item, scen, user=None):
        """:meth:`popularity_level` in words."""
        return POPULARITY_WORDS[self.popularity_level(item, scen, user)]

    def candidate_text(self, item, scen, user=None):
        """A candidate item as the tasks and the ranker write it: its text, and with ``candidate_popularity: words``
        how often other customers bought it (:meth:`popularity_words`)."""
        if self.candidate_popularity == "none":
            return self.text(item)
        return f"{self.text(item)} ({self.popularity_words(item, scen, user)})"

    # ------------------------------------------------------------------ pieces
    def _scenario(self, user, need):
        options = [s for s, items in sorted(self.positives[user].items()) if len(items) >= need]
        return self.rng.choice(options) if options else None

    def _history(self, items):
        return "; ".join(self.text(i) for i in items[-self.max_history:])

    def _pick(self, user, first=0):
        """(scenario, the user's positives there (oldest first), a random position >= ``first``) or None when no
        scenario has two positives."""
        scen = self._scenario(user, 2)
        if scen is None:
            return None
        items = self.positives[user][scen]
        return scen, items, self.rng.randrange(first, len(items))

    def next_prompt(self, scen, history):
        """The ``next`` task's question (the ranker asks it too)."""
        return (f"In the {scen} scenario the user bought, in this order: {self._history(history)}. "
                f"What did the user buy next?")

    def _negative(self, user, scen, avoid=()):
        """One of the user's own training negatives in the scenario, or None: never another item of the scenario,
        which could be one of the user's held-out positives (the builder reads the training split only)."""
        own = [i for i in self.negatives[user].get(scen, []) if i not in avoid]
        return self.rng.choice(own) if own else None

    # ------------------------------------------------------------------ tasks
    def mim(self, user):
        scen = self._scenario(user, 2)
        if scen is None:
            return None
        items = self.positives[user][scen][-self.max_history:]
        k = self.rng.randrange(len(items))
        shown = [MASK if j == k else self.text(i) for j, i in enumerate(items)]
        return Sample("mim", user, scen, f"In the {scen} scenario the user bought, oldest first: {'; '.join(shown)}. "
                                         f"Which item is {MASK}?", self.text(items[k]))

    def bpr(self, user):
        picked = self._pick(user)
        if picked is None:
            return None
        scen, items, target = picked
        history = items[:target] + items[target + 1:]
        neg = self._negative(user, scen)
        if neg is None:
            return None
        options = [items[target], neg]
        self.rng.shuffle(options)
        cand = lambda i: self.candidate_text(i, scen, user)  # noqa: E731
        return Sample("bpr", user, scen, f"In the {scen} scenario the user bought: {self._history(history)}. Which of "
                                         f"these two items did the user also buy? (1) {cand(options[0])} (2) "
                                         f"{cand(options[1])}", cand(items[target]))

    def mlm(self, user):
        scen = self._scenario(user, 1)
        if scen is None:
            return None
        words_of = [(i, self.text(i).split()) for i in self.positives[user][scen]]
        words_of = [(i, w) for i, w in words_of if len(w) >= 3]
        if not words_of:
            return None
        _, words = self.rng.choice(words_of)
        k = max(1, round(0.15 * len(words)))
        masked = sorted(self.rng.sample(range(len(words)), k))
        shown = " ".join(MASK if j in masked else w for j, w in enumerate(words))
        return Sample("mlm", user, scen, f"Fill in the {MASK} words of the title of an item the user bought in the "
                                         f"{scen} scenario: {shown}", ", ".join(words[j] for j in masked))

    def next(self, user):
        picked = self._pick(user, first=1)
        if picked is None:
            return None
        scen, items, k = picked
        return Sample("next", user, scen, self.next_prompt(scen, items[:k]), self.candidate_text(items[k], scen, user))

    def rank(self, user, candidates=4):
        picked = self._pick(user, first=1)
        if picked is None:
            return None
        scen, items, k = picked
        negs = []
        for _ in range(candidates - 1):
            neg = self._negative(user, scen, avoid=set(negs))
            if neg is not None:
                negs.append(neg)
        if not negs:
            return None
        listed = [items[k]] + negs
        self.rng.shuffle(listed)
        order = [listed.index(items[k]) + 1] + [j + 1 for j, i in enumerate(listed) if i != items[k]]
        shown = " ".join(f"({j + 1}) {self.candidate_text(i, scen, user)}" for j, i in enumerate(listed))
        return Sample("rank", user, scen, f"In the {scen} scenario the user bought: {self._history(items[:k])}. Rank "
                                          f"these candidates from most to least likely to be bought next: {shown}",
                      ", ".join(map(str, order)))

    def click(self, user):
        picked = self._pick(user)
        if picked is None:
            return None
        scen, items, k = picked
        history = items[:k] + items[k + 1:]
        buy = self.rng.random() < 0.5
        item = items[k] if buy else self._negative(user, scen)
        if item is None:
            return None
        return Sample("click", user, scen, f"In the {scen} scenario the user bought: {self._history(history)}. Would "
                                           f"the user buy {self.candidate_text(item, scen, user)}? Answer yes or no.",
                      "yes" if buy else "no")

    def listwise(self, user):
        picked = self._pick(user, first=1)
        if picked is None:
            return None
        scen, items, k = picked
        answer = self.candidate_text(items[k], scen, user)
        # only the user's own training negatives (never a held-out positive: no fallback to the scenario's items)
        own = sorted({self.candidate_text(i, scen, user) for i in self.negatives[user].get(scen, [])} - {answer})
        if not own:
            return None
        negs = self.rng.sample(own, min(self.listwise_negatives, len(own)))
        return Sample("listwise", user, scen, self.next_prompt(scen, items[:k]), answer, tuple(negs))

    # ------------------------------------------------------------------ all
    def build(self, tasks, max_samples):
        """Up to ``max_samples`` samples, the tasks taking turns over users in a seeded order."""
        tasks = [t.strip().lower() for t in tasks if t.strip()]
        if not tasks:
            raise SampleError(f"the task list is empty; choose from {', '.join(TASKS)}")
        unknown = [t for t in tasks if t not in TASKS]
        if unknown:
            raise SampleError(f"unknown task(s) {unknown}; choose from {', '.join(TASKS)}")
        users = list(self.users)
        self.rng.shuffle(users)
        samples = []
        while len(samples) < max_samples:
            before = len(samples)
            for user in users:
                for task in tasks:
                    if len(samples) < max_samples:
                        sample = getattr(self, task)(user)
                        if sample is not None:
                            samples.append(sample)
            if len(samples) == before:
                break  # no user can give any of these tasks a sample
        return samples
