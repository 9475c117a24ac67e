"""TSLRec's SFT samples: one per user, the user's training sequence (with latent categories) -> the user's
preference distribution over the K categories, written as text.

Our wording (the paper's is not available; ``PROMPT`` / :func:`render_distribution` are the one place to change it)::

    A user's items, oldest first, each with its latent category:
    - Toy Story (1995; Animation, Children's, Comedy) [C3]
    - ...
    What share of this user's items falls in each latent category?

answer ``C3: 40%, C7: 30%, C1: 20%, C5: 10%`` -- categories by share (ties by number), zero shares left out,
whole percents that sum to 100 (largest remainders). The target is computed over the user's whole training sequence
(never a validation or test item); the prompt shows its latest ``max_history`` items (a token budget).
"""
import random

import numpy as np

PROMPT = ("A user's items, oldest first, each with its latent category:\n{lines}\n"
          "What share of this user's items falls in each latent category?")


def category_distribution(sequence, categories, k):
    """Normalised counts of the latent categories of ``sequence`` (item tokens): a length-``k`` distribution."""
    if not sequence:
        raise ValueError("an empty sequence has no category distribution")
    counts = np.bincount([int(categories[i]) for i in sequence], minlength=k).astype(np.float64)
    if counts.size != k:
        raise ValueError(f"a category id is >= k={k}")
    return counts / counts.sum()


def percents(distribution):
    """Whole percents summing to 100 (largest-remainder rounding of ``100 * distribution``)."""
    raw = np.asarray(distribution, dtype=np.float64) * 100.0
    floor = np.floor(raw).astype(int)
    short = 100 - int(floor.sum())
    order = np.lexsort((np.arange(len(raw)), -(raw - floor)))  # largest remainder first, ties by category
    floor[order[:short]] += 1
    return floor


def render_distribution(distribution):
    pct = percents(distribution)
    order = sorted((c for c in range(len(pct)) if pct[c] > 0), key=lambda c: (-pct[c], c))
    return ", ".join(f"C{c}: {pct[c]}%" for c in order)


def parse_distribution(text, k):
    """The inverse of :func:`render_distribution` (for checks): a length-``k`` array of shares."""
    out = np.zeros(k)
    for part in text.split(","):
        name, _, value = part.strip().partition(":")
        out[int(name.strip()[1:])] = float(value.strip().rstrip("%")) / 100.0
    return out


def user_prompt(sequence, texts, categories, max_history=10):
    lines = "\n".join(f"- {texts[i]} [C{int(categories[i])}]" for i in sequence[-max_history:])
    return PROMPT.format(lines=lines)


def sft_samples(sequences, texts, categories, k, max_history=10, max_users=None, seed=0):
    """[(user, prompt, answer, distribution)] for ``max_users`` users (a seeded sample; None: all), in user order.
    ``sequences``: {user: [item tokens of the training part, oldest first]}."""
    users = sorted((u for u, s in sequences.items() if s), key=str)
    if max_users is not None and max_users < len(users):
        users = sorted(random.Random(seed).sample(users, int(max_users)), key=str)
    out = []
    for u in users:
        dist = category_distribution(sequences[u], categories, k)
        out.append((u, user_prompt(sequences[u], texts, categories, max_history), render_distribution(dist), dist))
    return out
