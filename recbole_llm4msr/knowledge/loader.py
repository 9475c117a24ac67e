"""The one door from a knowledge store to a consumer: vectors of one kind aligned to a list of ids.

:func:`align` takes a store, an entity kind (``scenario``, ``user``, ``item``) and the consumer's ids in its own
order (e.g. RecBole's ``field2id_token[uid_field]``: row ``i`` is internal id ``i``) and returns an
:class:`Aligned`: the rows of those ids in the store, which ids have a vector, and -- loaded or memory-mapped --
the vectors themselves. Ids without a vector (cold start; the padding id) get a row of zeros and ``has = False``;
what a model does with them is its own setting. Nothing here knows about models or configs.
"""
import os
from dataclasses import dataclass, replace
from typing import Optional

import numpy as np

from recbole_llm4msr.atomic import atomic_path
from recbole_llm4msr.knowledge.store import KnowledgeStore, StoreError

MMAP_ABOVE_BYTES = 1 << 30  # memory: auto -> memory-mapped when the float32 table would exceed 1 GiB


@dataclass
class Aligned:
    kind: str
    rows: np.ndarray               # [n] int64: row in the store's file, -1 without a vector
    has: np.ndarray                # [n] bool
    dim: int
    memory: str                    # load | mmap
    table: Optional[np.ndarray]    # [n, d] float32 when memory == "load" (zeros where has is False)
    source: np.ndarray             # the store's memory-mapped [N, d] vectors of this kind
    path: str
    padding: bool = False          # id 0 is padding (never has a vector)
    transform: Optional[tuple] = None  # (mean [d], scale [d] or matrix [d, d]) applied to looked-up rows (mmap)

    def transform_rows(self, x):
        """Rows read from ``source`` as the consumer must see them (the normalisation, for memory-mapped use)."""
        return x if self.transform is None else apply_transform(x, self.transform)

    @property
    def coverage(self):
        """Share of the (non-padding) ids that have a vector."""
        real = self.has[1:] if self.padding else self.has
        return float(real.mean()) if real.size else 0.0


def open_store(store):
    return store if isinstance(store, KnowledgeStore) else KnowledgeStore(store)


NORMS = ("none", "standardize", "whiten")


def normalization(store, kind, mode, eps=1e-5):
    """``(mean, scale [d] | matrix [d, d])`` of a population normalisation of the store's ``kind`` vectors (the
    store holds training users only): ``standardize`` -- per dimension ``(x - mean) / std``; ``whiten`` -- ZCA
    whitening ``(x - mean) @ W`` with unit covariance. Cached in the store folder as ``norm-<kind>-<mode>.npz``
    (written atomically; computed again when the folder is read-only)."""
    if mode == "auto":
        raise ValueError("knowledge_norm: auto is resolved before the vectors are normalised, by the validation "
                         "neighbour probe (recbole_llm4msr.knowledge.report.choose_norm; prepare() and the LLM4MSR "
                         "model call it): pass its choice here, one of " + ", ".join(NORMS))
    if mode not in NORMS:
        raise ValueError(f"knowledge_norm must be one of {', '.join(NORMS)} (or auto, for LLM4MSR's user vectors), "
                         f"not '{mode}'")
    if mode == "none":
        return None
    path = os.path.join(store.path, f"norm-{kind}-{mode}.npz")
    if os.path.isfile(path):
        with np.load(path) as z:
            return z["mean"], z["op"]
    mean, op = population_transform(store.vectors(kind), mode, eps)
    try:
        with atomic_path(path) as tmp:
            np.savez(tmp, mean=mean, op=op)
    except OSError:
        pass
    return mean, op


def population_transform(x, mode, eps=1e-5):
    """``(mean, scale [d] | matrix [d, d])`` of ``standardize`` / ``whiten`` over the rows of ``x`` (float32), as
    :func:`normalization` computes it for a store (which caches it)."""
    x = np.asarray(x, dtype=np.float64)
    mean = x.mean(0)
    if mode == "standardize":
        op = 1.0 / np.maximum(x.std(0), eps)
    else:
        cov = np.cov(x - mean, rowvar=False)
        vals, vecs = np.linalg.eigh(cov)
        op = (vecs / np.sqrt(np.maximum(vals, 0) + eps)) @ vecs.T
    return mean.astype(np.float32), op.astype(np.float32)


def apply_transform(x, transform):
    """``transform`` (from :func:`normalization`) on rows ``x`` [n, d] (numpy or torch)."""
    mean, op = transform
    centred = x - mean
    return centred * op if op.ndim == 1 else centred @ op


def align(store, kind, tokens, expected_dim=None, memory="load", padding=False, required=False, dataset=None,
          norm="none"):
    """Vectors of ``kind`` for ``tokens`` (in the consumer's order).

    ``padding``: ``tokens[0]`` is a padding id (RecBole's ``[PAD]``), never looked up. ``required``: every token must
    have a vector (scenarios). ``dataset``: the name the store must have been built for. ``memory``: ``load``
    (a float32 table), ``mmap`` (rows read on demand from the store's file) or ``auto`` (mmap above 1 GiB).
    ``norm``: ``none`` | ``standardize`` | ``whiten`` (:func:`normalization`; ids without a vector stay zero)."""
    store = open_store(store)
    if dataset is not None:
        store.require_dataset(dataset)
    if expected_dim is not None and int(expected_dim) != store.dim:
        raise StoreError(f"knowledge dimension mismatch: the model expects {expected_dim}-d knowledge, store "
                         f"{store.path} holds {store.dim}-d vectors (model {store.header.get('model')}); use the "
                         f"store of the LLM the model was trained with, or retrain")
    tokens = list(tokens)
    first = 1 if padding else 0
    rows = np.full(len(tokens), -1, dtype=np.int64)
    for i in range(first, len(tokens)):
        r = store.row(kind, tokens[i])
        if r is not None:
            rows[i] = r
    has = rows >= 0
    real = has[first:]
    if required and not real.all():
        missing = [tokens[i] for i in range(first, len(tokens)) if not has[i]]
        raise StoreError(f"knowledge store {store.path} has no {kind} vector for {missing[:5]} (store {kind}s: "
                         f"{store.ids(kind)[:10]}); rebuild the store")
    if real.size and not real.any():
        raise StoreError(f"knowledge store {store.path} holds none of the {real.size} {kind}s asked for: ids do not "
                         f"match (store built from other data?); rebuild the store")
    if memory == "auto":
        memory = "mmap" if len(tokens) * store.dim * 4 > MMAP_ABOVE_BYTES else "load"
    if memory not in ("load", "mmap"):
        raise ValueError(f"knowledge_memory must be auto, load or mmap, not '{memory}'")
    source = store.vectors(kind)
    transform = normalization(store, kind, str(norm or "none").lower())
    table = None
    if memory == "load":
        table = np.zeros((len(tokens), store.dim), dtype=np.float32)
        idx = np.flatnonzero(has)
        if idx.size:
            order = np.argsort(rows[idx])  # read the memory-mapped file in order
            values = np.asarray(source[rows[idx][order]], dtype=np.float32)
            table[idx[order]] = values if transform is None else apply_transform(values, transform)
    return Aligned(kind=kind, rows=rows, has=has, dim=store.dim, memory=memory, table=table, source=source,
                   path=store.path, padding=padding, transform=transform if memory == "mmap" else None)


CONTROLS = ("none", "shuffle", "zero")


def _control_mode(mode):
    mode = str(mode or "none").lower()
    if mode not in CONTROLS:
        raise ValueError(f"knowledge_control must be one of {', '.join(CONTROLS)}, not '{mode}'")
    return mode


def control(aligned, mode, seed=0):
    """A control for "is it the knowledge, or just the extra layers?" -- same shapes, no information:

    * ``shuffle``: every id that has a vector gets another such id's vector (one seeded random cycle: nobody keeps
      their own, the set of vectors is unchanged);
    * ``zero``: no id has a vector (every id is treated as cold start);
    * ``none``: ``aligned`` unchanged.
    """
    mode = _control_mode(mode)
    if mode == "none" or (mode == "shuffle" and aligned.has.sum() < 2):
        return aligned
    if mode == "zero":
        table = None if aligned.table is None else np.zeros_like(aligned.table)
        return replace(aligned, rows=np.full_like(aligned.rows, -1), has=np.zeros_like(aligned.has), table=table)
    rows = controlled_table(aligned.rows[:, None], aligned.has, mode, seed)[:, 0]  # idx[j] takes source[j]'s row
    table = None if aligned.table is None else controlled_table(aligned.table, aligned.has, mode, seed)
    return replace(aligned, rows=rows, table=table)


def controlled_table(table, has, mode, seed=0):
    """:func:`control` for a plain ``[..., n, d]`` array of rows aligned like ``has`` [n] (a user table, per-fold user
    tables): the same seeded cycle, so row ``i`` gets what :func:`control` gives it, or zeros under ``zero``."""
    mode = _control_mode(mode)
    if mode == "none":
        return table
    if mode == "zero":
        return np.zeros_like(table)
    idx = np.flatnonzero(has)
    if idx.size < 2:
        return table
    out = table.copy()
    out[..., idx, :] = table[..., idx[derangement(idx.size, seed)], :]
    return out


def fold_of(users, items, folds):
    """The fold of each (user, item) row: ``(user * 7919 + item) % folds`` on integer ids (numpy or torch), so a
    user's items spread over every fold and a row's fold needs nothing but its ids."""
    return (users * 7919 + items) % folds


def mean_item_vectors(users, item_rows, n, vectors):
    """Each of ``n`` users' vector as the mean of ``vectors`` over their rows (``users`` [r] in ``0..n-1``,
    ``item_rows`` [r] rows of ``vectors``; repeats counted), one sparse product; a user without rows gets the mean
    over every row. -> (float32 [n, d], rows per user [n])."""
    from scipy import sparse

    vectors = np.asarray(vectors, dtype=np.float32)
    counts = sparse.csr_matrix((np.ones(len(users), np.float32), (users, item_rows)), shape=(n, len(vectors)))
    sums = np.asarray(counts @ vectors, dtype=np.float32)
    per_user = np.asarray(counts.sum(axis=1)).ravel()
    population = sums.sum(0) / max(float(per_user.sum()), 1.0)
    out = np.where(per_user[:, None] > 0, sums / np.maximum(per_user, 1)[:, None], population[None, :])
    return out.astype(np.float32), per_user


def out_of_fold_means(store, n, users, items, fold, folds, transform=None, base=None):
    """[folds, n, d] float32: for each fold ``f``, row ``u`` is the mean of the store's item vectors over the rows
    (``users`` [r] row indices in ``0..n-1``, ``items`` [r] the store's item tokens, ``fold`` [r]) of ``u`` *outside*
    fold ``f`` -- a user vector made as ``knowledge_user_vector: items`` makes it, without one fold's rows, so that a
    training row in fold ``f`` never reads a vector built from its own label. A user with no row outside ``f`` gets
    the mean over every row outside ``f`` (as the store gives a user without positives the population mean); rows
    with no row at all take ``base``'s row (e.g. the store's own vector: nothing of theirs to leave out), or zeros.
    ``transform``: the consumer's normalisation (:func:`normalization`), applied to the means."""
    found = [store.row("item", t) for t in items]
    item_rows = np.array([-1 if r is None else r for r in found], dtype=np.int64)
    if (item_rows < 0).any():
        missing = sorted({str(t) for t, r in zip(items, item_rows) if r < 0})
        raise StoreError(f"knowledge store {store.path} holds no item vector for {len(missing)} liked item(s) "
                         f"(e.g. {missing[:3]}): out-of-fold user vectors need the store of this training split")
    vectors = np.asarray(store.vectors("item"), dtype=np.float32)
    users, fold = np.asarray(users, dtype=np.int64), np.asarray(fold, dtype=np.int64)
    seen = np.bincount(users, minlength=n) > 0
    out = np.zeros((folds, n, vectors.shape[1]), dtype=np.float32)
    for f in range(folds):
        keep = fold != f
        means = mean_item_vectors(users[keep], item_rows[keep], n, vectors)[0]
        if transform is not None:
            means = apply_transform(means, transform)
        out[f] = np.where(seen[:, None], means, 0.0 if base is None else base)
    return out


def derangement(n, seed):
    """Index ``src`` such that row ``i`` takes row ``src[i]``: one seeded random cycle through all ``n`` rows (nobody
    keeps their own, every row is used once) -- the cycle of ``knowledge_control: shuffle``."""
    if n < 2:
        raise ValueError(f"a shuffle needs at least two users, not {n}")
    cycle = np.random.default_rng(seed).permutation(n)
    src = np.empty(n, dtype=np.int64)
    src[cycle] = np.roll(cycle, -1)  # cycle[k] takes the row of cycle[k + 1]
    return src
