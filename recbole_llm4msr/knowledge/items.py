"""Item knowledge: every item's text (and, optionally, a latent category) through an LLM into a store of kind ``item``.

TSLRec's "information augmentation" stage and any other consumer of LLM item vectors use this. The store is the
generic one (:mod:`recbole_llm4msr.knowledge.store`): resumable chunk by chunk, merged atomically, fingerprinted.

Prompt (our wording, a setting: ``template``)::

    Item: <the item's text, as the dataset renders it (item_text_fields)>
    Latent category: C<k>            <- only when categories are given (TSLRec)

rendered with the LLM's chat template like every other prompt; the vector is the mean last-layer state over the
item's own tokens (``pooling: mean``, the default: the last token is the same template token for every item and
collapses, as the user vectors did) or the last token's (``last``).

Fingerprint parts: ``items`` (the ids and texts), ``categories``, ``prompts`` (template), ``llm`` (the weights by
content), ``pooling``, ``dtype``. :func:`check_item_store` refuses a store built for another dataset, other item
texts or categories, or -- when the caller names it -- another LLM, naming what differs.
"""
import logging
import time

from tqdm import tqdm

from recbole_llm4msr.knowledge import store as kstore
from recbole_llm4msr.knowledge.fingerprint import changed_parts, store_key, text_digest

logger = logging.getLogger(__name__)

TEMPLATE = "Item: {text}"
CATEGORY_LINE = "\nLatent category: C{category}"
ITEM_PARTS = ("items", "categories")


def item_prompt(text, category=None, template=TEMPLATE):
    prompt = template.format(text=text)
    return prompt if category is None else prompt + CATEGORY_LINE.format(category=int(category))


def item_fingerprint(items, texts, categories=None, template=TEMPLATE):
    """The data parts of an item store: the ids with their texts, and the categories (or None)."""
    return {"items": text_digest([[str(i), texts[i]] for i in items]),
            "categories": None if categories is None else text_digest([[str(i), int(categories[i])] for i in items]),
            "prompts": text_digest({"template": template, "category_line": CATEGORY_LINE})}


def missing_texts(items, texts):
    return [i for i in items if not str(texts.get(i, "")).strip()]


def build_item_store(dataset, items, texts, llm, cache_dir, categories=None, pooling="mean", template=TEMPLATE,
                     batch_size=32, chunk_size=2048, show_progress=True, llm_identity=None):
    """Vectors of ``items`` (tokens) from ``llm`` (a loaded KnowledgeLLM) into a store under ``cache_dir``; returns
    its path. A finished store with the same fingerprint is reused; an interrupted one resumes. Items without text
    are an error (the caller decides whether ids may stand in for text)."""
    items = [str(i) for i in items]
    texts = {str(k): v for k, v in texts.items()}
    if categories is not None:
        categories = {str(k): int(v) for k, v in categories.items()}
    empty = missing_texts(items, texts)
    if empty:
        raise ValueError(f"dataset '{dataset}': {len(empty)} of {len(items)} item(s) have no text (e.g. {empty[:5]}); "
                         f"set item_text_fields to columns of the .item file that describe items")
    if categories is not None:
        lost = [i for i in items if i not in categories]
        if lost:
            raise ValueError(f"{len(lost)} item(s) have no latent category (e.g. {lost[:5]}): the clustering did not "
                             f"cover the dataset's items")
    parts = item_fingerprint(items, texts, categories, template)
    parts.update(llm=llm_identity or llm.identity, pooling=pooling, dtype=llm.dtype)
    path = kstore.store_path(cache_dir, dataset, f"{llm.name}-items", "prompt", store_key(parts))
    if kstore.is_complete(path):
        logger.info(f"item store {path} exists: reusing it")
        return path
    start = time.perf_counter()
    writer = kstore.ShardWriter(path)
    done = writer.done_ids("item")
    todo = [i for i in items if i not in done]
    if done:
        logger.warning(f"resuming {path}: {len(done)} of {len(items)} items are already done")
    prompts = {i: item_prompt(texts[i], None if categories is None else categories[i], template) for i in todo}
    reference = item_prompt("", None, template)  # where an item's own tokens start (mean pooling)
    bar = tqdm(total=len(items), initial=len(items) - len(todo), desc=f"item knowledge {dataset}", unit="item",
               disable=not show_progress)
    for s in range(0, len(todo), chunk_size):
        chunk = todo[s:s + chunk_size]
        vecs, _ = llm.encode([prompts[i] for i in chunk], "prompt", batch_size, progress=bar.update,
                             pooling=pooling, reference=reference)
        writer.write_chunk("item", chunk, vecs, [{"kind": "item", "id": i, "prompt": prompts[i], "text": None}
                                                  for i in chunk])
    bar.close()
    writer.mark_done({"shard_id": 0, "num_shards": 1, "items": len(items)})
    header = {"dataset": dataset, "model": llm.name, "mode": "prompt", "pooling": pooling, "llm_dtype": llm.dtype,
              "template": template, "with_categories": categories is not None, "fingerprint": parts,
              "seconds": round(time.perf_counter() - start, 1)}
    with kstore.MergeLock(path, force=True):
        kstore.merge(path, header, {"item": items})
    logger.info(f"item store {path}: {len(items)} items in {time.perf_counter() - start:.0f} s")
    return path


def check_item_store(path, dataset, items=None, texts=None, categories=None, template=TEMPLATE, llm_identity=None):
    """Open the finished item store at ``path`` for ``dataset``; refuse one of another dataset, without item vectors,
    or (when given) of other item texts / categories / another LLM, naming what differs. With ``texts`` but no
    ``items`` the store's own items are checked, when ``texts`` has them all (items written as ids have none)."""
    store = kstore.KnowledgeStore(path).require_dataset(dataset)
    if "item" not in store.kinds:
        raise kstore.StoreError(f"knowledge store {path} holds no item vectors (it holds {store.kinds}); TSLRec needs "
                                f"an item store (llm4msr-tslrec --dataset={dataset} builds one)")
    if texts is not None and items is None and all(i in texts for i in store.ids("item")):
        items = store.ids("item")
    if items is not None and texts is not None:
        current = item_fingerprint([str(i) for i in items], {str(k): v for k, v in texts.items()},
                                   None if categories is None else {str(k): int(v) for k, v in categories.items()},
                                   template)
        names = ITEM_PARTS if categories is not None else ("items",)
        changed = changed_parts(store.fingerprint, current, names)
        if changed:
            raise kstore.StoreError(f"item store {path} does not match dataset '{dataset}': the {', '.join(changed)} "
                                    f"changed since it was built; rebuild it (llm4msr-tslrec --dataset={dataset})")
    if llm_identity is not None and store.fingerprint.get("llm") != llm_identity:
        raise kstore.StoreError(f"item store {path} was built with another LLM ({store.header.get('model')}, weights "
                                f"{store.fingerprint.get('llm')}), not the one asked for ({llm_identity}); use that "
                                f"LLM's store or rebuild")
    return store
