"""Does the knowledge carry information about users? Measures of a store's user vectors, against baselines.

* **geometry** (cheap; computed at every build into the store's header): mean pairwise cosine of the raw and of the
  standardised vectors, the effective rank (exp of the entropy of the normalised singular values), and the share of
  the mean norm that the population mean explains (``||mean|| / mean ||v||``: near 1, every user is nearly the
  same vector).
* **neighbour probe** (no model trained): for every validation row (user, item, label), the score is the mean
  training label of that item among the user's ``k`` nearest users in knowledge space (cosine) who have a training
  row for it; the item's training mean when none has. The probe's AUC asks the question that matters: do users the
  LLM places together like the same things? It is run on the same rows with (a) random vectors of the same shape
  and (b) a no-LLM profile (TF-IDF bag of the user's training positives and their item words); the difference
  knowledge - profile comes with a paired bootstrap 95% interval over users (:func:`auc_difference`). Two lesser
  no-LLM references say what the profile's words are worth (:func:`reference_profiles`): the bag of item ids alone,
  and the ids with the item's categories (every item text field after the title), each with its own difference. The
  probe is also split by user activity (:func:`probe_by_activity`: thirds of the users by training positives), as
  light users, of whom a bag of a few items knows least, are where an LLM's reading of the items could help most.
* **attribute probes** (where the dataset has a ``.user`` file): 5-fold cross-validated AUC of PCA(32) + logistic
  regression predicting each user attribute (binary: AUC; several classes: macro one-vs-rest AUC, the 20 most
  frequent classes), for the knowledge and the no-LLM profile.
* **projection**: a 2-D PCA of the vectors coloured by the user's main scenario and by an attribute (PNG).

Nothing here reads the test split. scikit-learn does the neighbours, probes and PCA; matplotlib the plot.
"""
import json
import logging
import os
from collections import defaultdict

import numpy as np
import pandas as pd

from recbole_llm4msr.atomic import atomic_path, atomic_write_json
from recbole_llm4msr.knowledge.fingerprint import file_digest
from recbole_llm4msr.knowledge.loader import NORMS, apply_transform, normalization

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------- geometry
def geometry(vectors):
    """Mean pairwise cosine (raw / standardised), effective rank and mean share of ``vectors`` [n, d]."""
    v = np.asarray(vectors, dtype=np.float64)
    n = v.shape[0]
    if n < 2:
        return {"users": n}

    def mean_cosine(x):
        unit = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        total = unit.sum(axis=0)
        return float((total @ total - n) / (n * (n - 1)))  # mean over pairs i != j, O(n d)

    std = (v - v.mean(0)) / np.maximum(v.std(0), 1e-12)
    s = np.linalg.svd(v - v.mean(0), compute_uv=False)
    p = s ** 2 / max(float((s ** 2).sum()), 1e-12)
    p = p[p > 0]
    return {"users": n, "dim": int(v.shape[1]),
            "mean_cosine_raw": round(mean_cosine(v), 4),
            "mean_cosine_standardized": round(mean_cosine(std), 4),
            "effective_rank": round(float(np.exp(-(p * np.log(p)).sum())), 2),
            "mean_share": round(float(np.linalg.norm(v.mean(0)) / np.linalg.norm(v, axis=1).mean()), 4)}


# ---------------------------------------------------------------------------------------------- neighbour probe
def neighbour_scores(users, vectors, train, rows, k=20):
    """Scores of ``rows`` (columns user, item) from the training labels of each user's ``k`` nearest users.

    ``users`` [n] ids and ``vectors`` [n, d] (dense array or sparse matrix); ``train`` columns user, item, label."""
    from sklearn.neighbors import NearestNeighbors

    index = {u: i for i, u in enumerate(users)}
    k = min(k, len(users) - 1)
    nn = NearestNeighbors(n_neighbors=k + 1, metric="cosine", algorithm="brute").fit(vectors)
    asked = sorted({u for u in rows["user"] if u in index}, key=lambda u: index[u])
    neighbours = {}
    for start in range(0, len(asked), 2048):
        chunk = asked[start:start + 2048]
        _, idx = nn.kneighbors(vectors[[index[u] for u in chunk]])
        for u, row in zip(chunk, idx):
            neighbours[u] = [users[j] for j in row if users[j] != u][:k]
    label = train.groupby(["user", "item"], sort=False)["label"].mean().to_dict()
    item_mean = train.groupby("item")["label"].mean().to_dict()
    overall = float(train["label"].mean())
    scores = np.empty(len(rows))
    for n, (u, i) in enumerate(zip(rows["user"], rows["item"])):
        seen = [label[(v, i)] for v in neighbours.get(u, ()) if (v, i) in label]
        scores[n] = np.mean(seen) if seen else item_mean.get(i, overall)
    return scores


def profile_vectors(users, train, item_text):
    """The no-LLM profile: TF-IDF of each user's training positives (item ids) and the words of their item texts."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    pos = train[train["label"] > 0.5]
    docs = defaultdict(list)
    for u, i in zip(pos["user"], pos["item"]):
        docs[u].append(f"item_{i} " + str(item_text.get(i, "")))
    return TfidfVectorizer(token_pattern=r"[^\s,;()]+", min_df=1, sublinear_tf=True).fit_transform(
        [" ".join(docs.get(u, [])) for u in users])


PROFILE = "profile (no LLM)"  # the bag of the user's items and every word of their texts: the headline reference
ITEMS_ONLY, ITEMS_CATEGORIES = "profile: items only", "profile: items + categories"


def reference_texts(files, reference):
    """The item texts (:func:`profile_vectors`' ``item_text``) a no-LLM reference reads: :data:`PROFILE` every
    ``item_text_fields`` field, :data:`ITEMS_ONLY` none (item ids alone), :data:`ITEMS_CATEGORIES` the fields after
    the first, the title (None when there is only a title)."""
    if reference == PROFILE:
        return files.item_texts()
    if reference == ITEMS_ONLY:
        return {}
    if reference == ITEMS_CATEGORIES:
        fields = list(files.config.get("item_text_fields") or [])[1:]
        return files.item_texts(fields=fields) if fields else None
    raise ValueError(f"no-LLM reference {reference!r}: one of {PROFILE!r}, {ITEMS_ONLY!r}, {ITEMS_CATEGORIES!r}")


def reference_profiles(users, train, files):
    """The lesser no-LLM references: {name: TF-IDF profile} of the user's training positives as item ids alone
    (:data:`ITEMS_ONLY`) and as ids with the words of the item's categories (:data:`ITEMS_CATEGORIES`, absent when
    there is only a title; :func:`reference_texts`). With :data:`PROFILE` (ids and every text word) they separate
    what the item's identity, its categories and its title's words are worth."""
    out = {}
    for name in (ITEMS_ONLY, ITEMS_CATEGORIES):
        texts = reference_texts(files, name)
        if texts is not None:
            out[name] = profile_vectors(users, train, texts)
    return out


def activity_groups(rows, train, groups=3):
    """Each row's activity group: its user's number of training positives, cut at the quantiles of the users of
    ``rows`` into ``groups`` groups of about as many users (fewer when quantiles coincide). -> (group per row [n],
    positives per row [n])."""
    if groups < 1:
        raise ValueError(f"activity groups: at least one group, not {groups}")
    positives = train[train["label"] > 0.5].groupby("user").size()
    per_row = rows["user"].map(positives).fillna(0).to_numpy()
    per_user = positives.reindex(pd.unique(rows["user"])).fillna(0).to_numpy()
    edges = np.unique(np.quantile(per_user, np.linspace(0, 1, groups + 1)[1:-1])) if len(per_user) else []
    return np.searchsorted(edges, per_row, side="right"), per_row


def probe_by_activity(rows, train, scores, references=(PROFILE,), compared=("knowledge",), groups=3, seed=0):
    """The neighbour probe per activity group (:func:`activity_groups`): for each group (lightest first) the users'
    range of training positives, how many users and rows, the AUC of every score array in ``scores`` ({name: scores
    of ``rows``}) on the group's rows, and for the names in ``compared`` the difference to each of ``references``
    with its paired bootstrap interval over users (:func:`auc_difference`). -> [{"group", "positives": [lo, hi],
    "users", "rows", "auc": {name: AUC}, "vs": {reference: {name: difference}}}]."""
    member, per_row = activity_groups(rows, train, groups)
    y, who = rows["label"].to_numpy(), rows["user"].to_numpy()
    out = []
    for g in np.unique(member):
        m = member == g
        out.append({"group": int(g), "positives": [int(per_row[m].min()), int(per_row[m].max())],
                    "users": int(len(np.unique(who[m]))), "rows": int(m.sum()),
                    "auc": {name: auc(y[m], s[m]) for name, s in scores.items()},
                    "vs": {ref: {name: auc_difference(y[m], scores[name][m], scores[ref][m], who[m], seed=seed)
                                 for name in compared} for ref in references}})
    return out


def auc(y, s):
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y)
    return None if len(np.unique(y)) < 2 else round(float(roc_auc_score(y, s)), 4)


def _weighted_auc(group, y, weights, size):
    """AUC of scores whose tie groups are ``group`` (ranks of the distinct scores, ascending) with row ``weights``
    (ties count one half), in O(n): a bootstrap resample is the original rows weighted by how often it drew them."""
    pos = np.bincount(group, weights * y, minlength=size)
    neg = np.bincount(group, weights * (1.0 - y), minlength=size)
    below = np.cumsum(neg) - neg  # negative weight under each distinct score
    total_pos, total_neg = pos.sum(), neg.sum()
    if total_pos <= 0 or total_neg <= 0:
        return None
    return float((pos * (below + 0.5 * neg)).sum() / (total_pos * total_neg))


def auc_difference(y, a, b, groups, n_boot=200, seed=0, paired_lists=False):
    """``AUC(a) - AUC(b)`` on the same rows with a paired bootstrap 95% interval: users (``groups``) are resampled
    with replacement, each with all of their rows, and both AUCs are taken on every resample. -> {"difference",
    "ci95": [lo, hi], "p", "resamples"} (None when ``y`` has one class); ``p`` is the two-sided bootstrap p-value
    (twice the smaller share of resampled differences on either side of 0, at most 1; resolution ``2 / n_boot``).
    ``a`` may be a list of score arrays (e.g. knowledge from several alignment runs): the difference is then the mean
    of ``AUC(a_i) - AUC(b)`` over them, every AUC taken on the same resample, and the result says ``"pooled": n``;
    ``b`` may be a list too (e.g. a baseline's seeds): then its mean AUC, and ``"pooled_baseline": n``.
    ``paired_lists``: ``a`` and ``b`` are lists of the same length whose entries are paired (seed i of a model and
    seed i of its baseline): every resample then also draws the pairs with replacement, so the interval carries the
    seeds' spread as well as the users' (a two-level bootstrap; ``"resampled_pairs": n``).
    A resample is a weighting of the rows (how often
    their user was drawn), so each AUC is a weighted sum over the scores sorted once (:func:`_weighted_auc`): the
    same values as sorting every resample's rows again, at O(rows) per resample (a KuaiSAR-size split in seconds)."""
    from sklearn.metrics import roc_auc_score

    pooled, pooled_b = isinstance(a, (list, tuple)), isinstance(b, (list, tuple))
    y = np.asarray(y, dtype=np.float64)
    a_list = [np.asarray(s, dtype=np.float64) for s in (a if pooled else [a])]
    b_list = [np.asarray(s, dtype=np.float64) for s in (b if pooled_b else [b])]
    if not a_list or not b_list:
        raise ValueError("auc_difference: an empty list of score arrays to pool")
    if len(np.unique(y)) < 2:
        return None
    _, member = np.unique(np.asarray(groups).astype(str), return_inverse=True)
    member = member.ravel()
    tie_groups = []  # per score array: each row's rank among the distinct scores, and how many there are
    for s in (*a_list, *b_list):
        distinct, inverse = np.unique(s, return_inverse=True)
        tie_groups.append((inverse.ravel(), len(distinct)))
    if paired_lists and not (pooled and pooled_b and len(a_list) == len(b_list)):
        raise ValueError(f"auc_difference: paired_lists needs two lists of the same length, not "
                         f"{len(a_list) if pooled else 'one array'} and {len(b_list) if pooled_b else 'one array'}")
    users = int(member.max()) + 1
    rng = np.random.default_rng(seed)
    diffs = []
    n = len(a_list)
    for _ in range(n_boot):
        weights = np.bincount(rng.integers(0, users, users), minlength=users)[member].astype(np.float64)
        if paired_lists:  # which pairs this resample holds (drawn after the users: the users' draws stay as without)
            drawn = np.bincount(rng.integers(0, n, n), minlength=n)
            use = [i for i in range(n) if drawn[i]]
            aucs = [_weighted_auc(tie_groups[j][0], y, weights, tie_groups[j][1]) for j in use + [n + i for i in use]]
            if aucs[-1] is not None:
                w = drawn[use].astype(np.float64)
                diffs.append(float(np.dot(w, np.subtract(aucs[:len(use)], aucs[len(use):])) / w.sum()))
            continue
        aucs = [_weighted_auc(g, y, weights, size) for g, size in tie_groups]
        if aucs[-1] is not None:  # both classes drawn
            diffs.append(float(np.mean(aucs[:len(a_list)])) - float(np.mean(aucs[len(a_list):])))
    diffs = np.asarray(diffs)
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    p = min(1.0, 2 * min(float((diffs <= 0).mean()), float((diffs >= 0).mean())))
    base = float(np.mean([roc_auc_score(y, s) for s in b_list]))
    out = {"difference": round(float(np.mean([roc_auc_score(y, s) for s in a_list]) - base), 4) + 0.0,  # no -0.0
           "ci95": [round(float(lo), 4), round(float(hi), 4)], "p": round(p, 4), "resamples": len(diffs)}
    out.update({"pooled": len(a_list)} if pooled else {}, **({"pooled_baseline": len(b_list)} if pooled_b else {}),
               **({"resampled_pairs": n} if paired_lists else {}))
    return out


def probe_versus(store_a, store_b, files, k=20, norms=NORMS, seed=0):
    """Is store ``a``'s knowledge better than store ``b``'s (e.g. an aligned LLM's against its base model's)? The
    neighbour probe of both stores' user vectors on the same validation rows — those of the users both stores hold
    — per normalisation in ``norms`` (as a run with that ``knowledge_norm`` sees the vectors), with ``AUC(a) -
    AUC(b)`` and its paired bootstrap 95% interval over users (:func:`auc_difference`). Reads the training and
    validation splits only. -> {"users", "rows", "k", "by_norm": {norm: {"a", "b", "a_minus_b"}}}."""
    splits = [(s.header.get("fingerprint") or {}).get("train_split") for s in (store_a, store_b)]
    if None not in splits and splits[0] != splits[1]:
        raise ValueError(f"the stores {store_a.path} and {store_b.path} were built from different training splits "
                         f"({splits[0]} vs {splits[1]}): their users' neighbours are not comparable; rebuild one")
    train = files.train_interactions()
    valid = files.split_interactions("valid")
    ids = [list(s.ids("user")) for s in (store_a, store_b)]
    common = set(ids[0]) & set(ids[1])
    if not common:
        raise ValueError(f"the stores {store_a.path} and {store_b.path} hold no user in common: nothing to compare")
    users = [u for u in ids[0] if u in common]  # store a's order; b's rows are taken in the same order
    known = valid[valid["user"].isin(common)]
    out = {"store_a": store_a.path, "store_b": store_b.path, "users": len(users), "rows": int(len(known)), "k": k,
           "by_norm": {}}
    vectors = []
    for store, order in zip((store_a, store_b), ids):
        where = {u: n for n, u in enumerate(order)}
        v = np.asarray(store.vectors("user"), dtype=np.float32)
        vectors.append(v[[where[u] for u in users]])
    for norm in norms:
        sa, sb = (norm_scores(s, users, v, train, known, k, norm) for s, v in zip((store_a, store_b), vectors))
        out["by_norm"][norm] = {"a": auc(known["label"], sa), "b": auc(known["label"], sb),
                                "a_minus_b": auc_difference(known["label"], sa, sb, known["user"], seed=seed)}
    return out


# ------------------------------------------------------------------------------------ choosing a normalisation
CHOICE_FILE = "norm-choice.json"


def norm_scores(store, users, vectors, train, rows, k, norm):
    """:func:`neighbour_scores` of the user ``vectors`` as a run with ``knowledge_norm: norm`` sees them."""
    transform = normalization(store, "user", norm)
    return neighbour_scores(users, vectors if transform is None else apply_transform(vectors, transform), train, rows,
                            k)


def _choice_key(files, norms, k):
    """What a kept choice depends on (the validation split's digest, ``k``, the options); the options checked."""
    unknown = [n for n in norms if n not in NORMS]
    if unknown or not norms:
        raise ValueError(f"the normalisations to choose from must be some of {', '.join(NORMS)}, not {norms}")
    valid_path = os.path.join(files.folder, f"{files.name}.valid.inter")
    if not os.path.isfile(valid_path):
        raise FileNotFoundError(f"knowledge_norm: auto chooses on the validation split, and dataset '{files.name}' has "
                                f"no {valid_path} (a fixed split from the converter); name a normalisation instead "
                                f"(none, standardize, whiten)")
    return {"valid_split": file_digest(valid_path), "k": int(k), "norms": list(norms)}


def _keep_choice(store, files, key, aucs, valid_rows):
    """The best of ``aucs`` (ties: the earlier of the options), written to the store folder with ``key``."""
    norms = key["norms"]
    if all(aucs[n] is None for n in norms):
        raise ValueError(f"knowledge_norm: auto: the validation rows of '{files.name}' that have a user vector hold "
                         f"one class only ({valid_rows} rows): the probe cannot choose; name a normalisation instead")
    best = max(norms, key=lambda n: (aucs[n] if aucs[n] is not None else -1.0, -norms.index(n)))
    out = dict(key, chosen=best, auc={n: aucs[n] for n in norms}, valid_rows=int(valid_rows))
    try:
        atomic_write_json(os.path.join(store.path, CHOICE_FILE), out, indent=2)
    except OSError:
        pass  # a read-only store folder: chosen again next time
    return out


def choose_norm(store, files, norms=NORMS, k=20, progress=None):
    """The normalisation (``knowledge_norm``) under which the store's user vectors score best on the validation
    neighbour probe (ties: the earlier of ``norms``, so ``none`` before any transform). -> {"chosen", "auc" {norm:
    AUC}, "k", "valid_rows"}. Kept in the store folder as ``norm-choice.json`` with the validation split's digest, the
    probe's ``k`` and ``norms``: reused while those are the same (computed again when the folder is read-only).
    Reads the training and validation splits only."""
    key = _choice_key(files, [str(n).lower() for n in norms], k)
    path = os.path.join(store.path, CHOICE_FILE)
    if os.path.isfile(path):
        with open(path) as f:
            kept = json.load(f)
        if all(kept.get(name) == value for name, value in key.items()):
            return kept
    train, valid = files.train_interactions(), files.split_interactions("valid")
    users = list(store.ids("user"))
    vectors = np.asarray(store.vectors("user"), dtype=np.float32)
    known = valid[valid["user"].isin(set(users))]
    aucs = {}
    for norm in key["norms"]:
        aucs[norm] = auc(known["label"], norm_scores(store, users, vectors, train, known, k, norm))
        if progress is not None:
            progress(norm, aucs[norm])
    return _keep_choice(store, files, key, aucs, len(known))


# ---------------------------------------------------------------------------------------------- attribute probes
def attribute_auc(features, values, seed=0, folds=5):
    """Cross-validated AUC of PCA(32) + logistic regression predicting ``values`` from ``features``."""
    from sklearn.decomposition import PCA, TruncatedSVD
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    values = pd.Series(values).astype(str).reset_index(drop=True)
    top = values.value_counts().index[:20]
    keep = values.isin(top).to_numpy()
    y = values[keep].to_numpy()
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2 or counts.min() < folds:
        return None
    x = features[keep]
    dims = min(32, x.shape[1] - 1, x.shape[0] - 1)
    reduce = TruncatedSVD(dims, random_state=seed) if hasattr(x, "tocsr") else PCA(dims, random_state=seed)
    steps = [reduce, StandardScaler(), LogisticRegression(max_iter=2000)]
    if not hasattr(x, "tocsr"):
        steps.insert(0, StandardScaler())
    proba = cross_val_predict(make_pipeline(*steps), x, y, method="predict_proba",
                              cv=StratifiedKFold(folds, shuffle=True, random_state=seed))
    if len(classes) == 2:
        return auc(y == classes[1], proba[:, 1])
    from sklearn.metrics import roc_auc_score

    return round(float(roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=classes)), 4)


# ---------------------------------------------------------------------------------------------- the report
def knowledge_report(store, files, out_dir=None, k=20, seed=0, plot=True, norms=(), norm_choice=False):
    """Every measure above for ``store``'s user vectors on ``files`` (a DatasetFiles); written to
    ``out_dir/report.json`` (+ ``report.png``) when ``out_dir`` is given. Reads the training and validation splits
    only. ``norms`` (e.g. ``("standardize", "whiten")``): the neighbour probe also on the vectors as a run with that
    ``knowledge_norm`` sees them, with its own difference to the profile (``neighbour_probe_by_norm``).
    ``norm_choice``: also what ``knowledge_norm: auto`` picks (:func:`choose_norm`, kept in the store folder for the
    runs that follow), as ``knowledge_norm_auto``. Also: the probe of the lesser references (bag of item ids, with
    the item's categories; ``neighbour_probe_vs_references``, and per normalisation) and the probe per activity
    group (``neighbour_probe_by_activity``, each knowledge row against the profile and the lesser references)."""
    train = files.train_interactions()
    valid = files.split_interactions("valid")
    users = list(store.ids("user"))
    vectors = np.asarray(store.vectors("user"), dtype=np.float32)
    out = {"store": store.path, "model": store.header.get("model"), "mode": store.header.get("mode"),
           "pooling": store.header.get("pooling"), "geometry": geometry(vectors), "k": k,
           "valid_rows": int(len(valid))}
    rng = np.random.default_rng(seed)
    profile = profile_vectors(users, train, files.item_texts())
    references = reference_profiles(users, train, files)
    probes = {"knowledge": vectors, "random": rng.standard_normal(vectors.shape).astype(np.float32),
              PROFILE: profile, **references}
    known = valid[valid["user"].isin(set(users))]
    scores = {name: neighbour_scores(users, x, train, known, k) for name, x in probes.items()}
    out["neighbour_probe_auc"] = {name: auc(known["label"], s) for name, s in scores.items()}
    out["neighbour_probe_rows"] = int(len(known))
    # is the knowledge better or worse than the profile, or within the noise of these validation rows?
    out["neighbour_probe_vs_profile"] = auc_difference(known["label"], scores["knowledge"], scores[PROFILE],
                                                       known["user"], seed=seed)
    out["neighbour_probe_vs_references"] = {  # ... and than the bag of item ids, with or without their categories
        name: auc_difference(known["label"], scores["knowledge"], scores[name], known["user"], seed=seed)
        for name in references}
    if norm_choice:  # the choice needs every normalisation's probe
        key = _choice_key(files, list(NORMS), k)
        norms = list(dict.fromkeys([*norms, *(n for n in NORMS if n != "none")]))
    if norms:
        out["neighbour_probe_by_norm"] = {}
        for norm in norms:
            s = scores[f"knowledge ({norm})"] = norm_scores(store, users, vectors, train, known, k, norm)
            out["neighbour_probe_by_norm"][norm] = {
                "auc": auc(known["label"], s),
                "vs_profile": auc_difference(known["label"], s, scores[PROFILE], known["user"], seed=seed),
                "vs_references": {name: auc_difference(known["label"], s, scores[name], known["user"], seed=seed)
                                  for name in references}}
    if norm_choice:  # from the probes above (the raw vectors' is the knowledge row's)
        aucs = {"none": out["neighbour_probe_auc"]["knowledge"],
                **{n: v["auc"] for n, v in out["neighbour_probe_by_norm"].items()}}
        out["knowledge_norm_auto"] = _keep_choice(store, files, key, aucs, len(known))
    # where (for which users) the knowledge stands against the profile: raw and as each normalisation gives it
    out["neighbour_probe_by_activity"] = probe_by_activity(
        known, train, scores, references=[PROFILE, *references], compared=[n for n in scores if n.startswith("knowledge")],
        seed=seed)
    attrs = files.user_attributes()
    out["attribute_auc"] = {}
    if attrs is not None:
        attrs = attrs.set_index("user").reindex(users)
        # attributes with a handful of values (gender, occupation); ids such as zip codes are not attributes
        attrs = attrs[[c for c in attrs.columns if 2 <= attrs[c].nunique() <= 50]]
        for col in attrs.columns:
            ok = attrs[col].notna().to_numpy()
            if ok.sum() < 20:
                continue
            out["attribute_auc"][col] = {
                "knowledge": attribute_auc(vectors[ok], attrs[col][ok], seed),
                PROFILE: attribute_auc(profile[np.flatnonzero(ok)], attrs[col][ok], seed)}
    if out_dir:
        atomic_write_json(os.path.join(out_dir, "report.json"), out, indent=2)
        if plot:
            main = train.groupby("user")["scenario"].agg(lambda s: s.value_counts().index[0]).reindex(users)
            attribute = None
            if attrs is not None and len(attrs.columns):
                name = next((c for c in ("gender", "occupation") if c in attrs.columns), attrs.columns[0])
                attribute = (name, attrs[name])
            projection_plot(vectors, main, attribute, os.path.join(out_dir, "report.png"), out)
    return out


def projection_plot(vectors, scenario, attribute, path, summary=None):
    """2-D PCA of the user vectors, coloured by main scenario and (if given) by ``attribute = (name, values)``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.decomposition import PCA

    xy = PCA(2, random_state=0).fit_transform(np.asarray(vectors, dtype=np.float64))
    panels = [("main scenario", scenario)] + ([attribute] if attribute is not None else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.8))
    axes = np.atleast_1d(axes)
    for ax, (title, values) in zip(axes, panels):
        values = pd.Series(np.asarray(values)).astype(str)
        for j, value in enumerate(values.value_counts().index[:10]):
            mask = (values == value).to_numpy()
            ax.scatter(xy[mask, 0], xy[mask, 1], s=6, alpha=0.6, label=value, color=plt.cm.tab10(j % 10))
        ax.set_title(f"users by {title}")
        ax.legend(markerscale=2, fontsize=7)
        ax.set_xlabel("PC 1")
        ax.set_ylabel("PC 2")
    if summary:
        g, p = summary["geometry"], summary["neighbour_probe_auc"]
        fig.suptitle(f"{os.path.basename(summary['store'])}: mean cosine {g.get('mean_cosine_raw')}, effective rank "
                     f"{g.get('effective_rank')}; neighbour-probe AUC {p.get('knowledge')} (random {p.get('random')}, "
                     f"no-LLM profile {p.get(PROFILE)})", fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return path
