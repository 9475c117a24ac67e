"""Does the LLM know more about an item than the item's own words? A probe of LLM-expanded word bags.

    python benchmarks/expanded_words.py --dataset amazon-art-office --m 1,2,5,20

The no-LLM profile (the neighbour probe's reference) is a bag of the user's liked items and every word of their
texts; no LLM knowledge tried so far beats it. This asks what the LLM could add *to* such a bag: each liked item's
text is expanded with the ``m`` vocabulary words nearest to the item in the LLM's space (the item vectors of the
default knowledge store against the words of the dataset's item texts, each word encoded as the store encodes an
item text), so an item can bring words it does not contain ("watercolor" for a brush set). A user is the TF-IDF bag
(sublinear tf) of their liked items' tokens, probed with the report's neighbour probe on the validation rows.

Per ``m``, with paired bootstrap 95% intervals over users: LLM words alone; own words alone and with the LLM words;
ids + own words (the profile, recomputed here) and with the LLM words. Each LLM variant has its control: every item
takes the expansion of another item (a random permutation of the items: the same words in the same amounts, the
LLM's link to the item cut). LLM − control says whether the LLM's item-word similarity carries information; the
"ids + own + LLM" row against the profile says whether it adds any beyond the profile.

A CSV (rows of other datasets kept), its Markdown table beside it. Reads the training and validation splits only.
"""
import argparse
import logging
import os
import re
import sys
import time
from collections import Counter

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks.knowledge_quality import interval, merged_into, write_markdown  # noqa: E402
from benchmarks.profile_knowledge import add_source_args, open_source, token_bags  # noqa: E402
from recbole_llm4msr.knowledge.items import item_prompt  # noqa: E402
from recbole_llm4msr.knowledge.report import auc, auc_difference, neighbour_scores  # noqa: E402

logger = logging.getLogger("expanded_words")
TOKEN = re.compile(r"[^\s,;()]+")  # the profile's token pattern (report.profile_vectors)
VARIANTS = ("llm", "own", "own+llm", "ids+own", "ids+own+llm")  # each with "llm": a control with another item's words
FIELDS = ["dataset", "m", "variant", "users", "rows", "vocabulary", "auc", "control_auc", "minus_control",
          "minus_profile", "profile"]


def vocabulary(items, texts, min_df=2):
    """The lower-cased tokens of the items' texts found in at least ``min_df`` items, numbers and punctuation left
    out, sorted."""
    df = Counter()
    for i in items:
        df.update({w.lower() for w in TOKEN.findall(str(texts.get(i) or ""))})
    words = sorted(w for w, c in df.items() if c >= min_df and not re.fullmatch(r"[\d\W_]+", w))
    if not words:
        raise ValueError(f"no word is in {min_df} or more item texts: lower --min_df")
    return words


def encoded_as_items(llm, texts, header, batch_size=32):
    """``texts`` encoded as the store at ``header`` encoded its item texts: as raw text by a sentence encoder
    (``mode: encoder``), in the item template with the same pooling by a decoder. float32 [len(texts), dim]."""
    if header.get("mode") not in ("encoder", "prompt"):
        raise ValueError(f"the source store was made in {header.get('mode')!r} mode: this needs the item vectors of "
                         f"an encoder or prompt-mode store (knowledge_user_vector: items)")
    raw = header["mode"] == "encoder"
    prompts = list(texts) if raw else [item_prompt(t) for t in texts]
    vecs, _ = llm.encode(prompts, "prompt", batch_size, pooling=header.get("pooling") or "mean",
                         reference=None if raw else item_prompt(""))
    return np.asarray(vecs, dtype=np.float32)


def word_vectors(llm, words, header, batch_size=32):
    """The words encoded as the store at ``header`` encoded its item texts (:func:`encoded_as_items`), unit
    length."""
    vecs = encoded_as_items(llm, words, header, batch_size)
    return vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)


def nearest_words(item_vectors, word_vecs, m, chunk=4096):
    """[items, m] indices of each item's ``m`` most cosine-similar words, nearest first."""
    x = np.asarray(item_vectors, dtype=np.float32)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    out = []
    for a in range(0, len(x), chunk):
        sim = x[a:a + chunk] @ word_vecs.T
        if m < sim.shape[1]:
            top = np.argpartition(-sim, m - 1, axis=1)[:, :m]
        else:
            top = np.broadcast_to(np.arange(sim.shape[1]), sim.shape)
        order = np.argsort(-np.take_along_axis(sim, top, 1), axis=1, kind="stable")
        out.append(np.take_along_axis(top, order, 1))
    return np.concatenate(out)


def item_tokens(items, texts, words, top, seed=0):
    """{variant: {item: [token]}} for :data:`VARIANTS` and their controls (``<variant> control``): ids ``item_<id>``,
    own words ``w_<word>``, LLM words (``top``: :func:`nearest_words` rows in ``items`` order) as ``w_<word>`` too,
    so an expansion word and the same word in a text are one token; the control gives every item the LLM words of
    another (a seeded permutation)."""
    own = {i: ["w_" + w.lower() for w in TOKEN.findall(str(texts.get(i) or ""))] for i in items}
    ids = {i: [f"item_{i}"] for i in items}
    llm = {i: ["w_" + words[j] for j in row] for i, row in zip(items, top)}
    perm = np.random.default_rng(seed).permutation(len(items))
    other = {i: llm[items[p]] for i, p in zip(items, perm)}
    out = {}
    for name, expansion in (("", llm), (" control", other)):
        out["llm" + name] = expansion
        out["own+llm" + name] = {i: own[i] + expansion[i] for i in items}
        out["ids+own+llm" + name] = {i: ids[i] + own[i] + expansion[i] for i in items}
    out["own"] = own
    out["ids+own"] = {i: ids[i] + own[i] for i in items}
    return out


def measure(source, files, llm, ms, k=20, min_df=2, seed=0, resamples=200, batch_size=32):
    """Rows of :data:`FIELDS`: per m in ``ms`` every variant's probe AUC, its control's, and the paired differences
    (variant − control, variant − the ids + own words profile)."""
    users, items = list(source.ids("user")), list(source.ids("item"))
    texts = files.item_texts()
    words = vocabulary(items, texts, min_df)
    start = time.perf_counter()
    wv = word_vectors(llm, words, source.header, batch_size)
    logger.info(f"{len(words)} words encoded in {time.perf_counter() - start:.1f} s")
    train, valid = files.train_interactions(), files.split_interactions("valid")
    known = valid[valid["user"].isin(set(users))]
    y, who = known["label"].to_numpy(), known["user"].to_numpy()
    item_vectors = np.asarray(source.vectors("item"), dtype=np.float32)
    scores, rows = {}, []

    def score(tokens):
        return neighbour_scores(users, token_bags(users, train, tokens), train, known, k)

    for m in ms:
        if not 1 <= m <= len(words):
            raise ValueError(f"--m {m}: between 1 and the {len(words)} words of the vocabulary")
        tokens = item_tokens(items, texts, words, nearest_words(item_vectors, wv, m), seed)
        for name in VARIANTS:
            if "llm" in name or name not in scores:  # the no-LLM variants do not depend on m
                scores[name] = score(tokens[name])
        for name in VARIANTS:
            control = score(tokens[name + " control"]) if "llm" in name else None
            rows.append({"dataset": source.header["dataset"], "m": m, "variant": name, "users": len(users),
                         "rows": len(known), "vocabulary": len(words), "auc": auc(y, scores[name]),
                         "control_auc": None if control is None else auc(y, control),
                         "minus_control": None if control is None else interval(
                             auc_difference(y, scores[name], control, who, resamples, seed)),
                         "minus_profile": None if name == "ids+own" else interval(
                             auc_difference(y, scores[name], scores["ids+own"], who, resamples, seed)),
                         "profile": auc(y, scores["ids+own"])})
            logger.info(f"m={m} {name}: {rows[-1]['auc']} (control {rows[-1]['control_auc']}; "
                        f"− profile {rows[-1]['minus_profile']})")
    return rows


def write(path, rows):
    """Merge ``rows`` into the CSV at ``path`` (a dataset's rows replace its earlier ones), the Markdown beside it."""
    merged = merged_into(path, rows, FIELDS)
    write_markdown(
        path[:-4] + ".md",
        "LLM-expanded word bags (`benchmarks/expanded_words.py`): each liked item's text plus the m words nearest to "
        "the item in the LLM's space (the default store's item vectors); a user = TF-IDF bag of their liked items' "
        "tokens; neighbour probe (k = 20) on the validation rows. Control: every item takes another item's m words. "
        "`ids+own` is the no-LLM profile (items and every word of their texts). Differences: paired bootstrap 95% "
        "interval over users",
        ["dataset", "m", "bag", "probe AUC", "control (another item's words)", "− control [95% CI]",
         "− profile [95% CI]"],
        [[r["dataset"], r["m"], r["variant"], r["auc"], r["control_auc"], r["minus_control"], r["minus_profile"]]
         for r in merged])


def parse_ms(text):
    try:
        ms = [int(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise SystemExit(f"--m {text!r}: comma-separated whole numbers, e.g. 1,2,5,20")
    if not ms:
        raise SystemExit(f"--m {text!r}: at least one number of words")
    return ms


def main(argv=None):
    from recbole_llm4msr.knowledge.extract import load_llm

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_source_args(p)
    p.add_argument("--m", default="1,2,5,20", help="comma-separated numbers of LLM words per item")
    p.add_argument("--min_df", type=int, default=2, help="a vocabulary word is in at least this many item texts")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resamples", type=int, default=200)
    p.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "expanded-words.csv"))
    args = p.parse_args(argv)
    ms = parse_ms(args.m)
    spec, source, files, _, _ = open_source(args)
    if "item" not in (source.header.get("kinds") or {}):
        raise SystemExit(f"{source.path} holds no item vectors: give --source a store made with knowledge_user_vector: "
                         f"items (the default recipe)")
    if source.header.get("llm") != spec.llm:
        raise SystemExit(f"{source.path} was made by '{source.header.get('llm')}', not '{spec.llm}' (the dataset's "
                         f"knowledge_llm): the words must be encoded by the model that made the item vectors")
    rows = measure(source, files, load_llm(spec), ms, args.k, args.min_df, args.seed, args.resamples)
    write(args.out, rows)
    logger.info(f"wrote {args.out}")
    return rows


if __name__ == "__main__":
    main()
