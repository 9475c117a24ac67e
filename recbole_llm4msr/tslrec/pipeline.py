"""The TSLRec pipeline: pre-train -> cluster -> user-level SFT -> item vectors, each stage resumable.

    run(TSLRecSettings(dataset="amazon-art-office", backbone="SASRec", k=32, llm="smollm2", out="tslrec/aao"))

Stages and what they leave in ``out`` (each written atomically; a finished stage is reused, so the same call after a
kill continues where it stopped; the LoRA stage and the item extraction also resume within themselves):

0. ``pretrain.npz`` / ``pretrain.json`` -- RecBole trains ``backbone`` (stock SASRec by default) on the dataset's
   training part with RecBole's leave-one-out split (early stopping on validation); its item embeddings and every
   user's training sequence (the split's training targets, so no validation or test item) are kept.
1. ``categories.json`` -- k-means (scikit-learn, ``n_init=10``) of the item embeddings into ``k`` latent
   categories; ``samples.jsonl`` -- one SFT sample per user (:mod:`recbole_llm4msr.tslrec.samples`);
   ``model/`` -- the LLM LoRA-fine-tuned on them (the alignment's fine-tuning code,
   :func:`recbole_llm4msr.align.finetune.finetune`), merged and saved with a manifest; ``loss.png``.
2. ``stores/`` -- every item's text and category through the fine-tuned LLM into a fingerprinted store of kind
   ``item`` (:func:`recbole_llm4msr.knowledge.items.build_item_store`); ``tslrec.json`` -- the summary, written last.

``sft=False`` is the "raw LLM" ablation: no stage 0 or 1, items embedded from their text alone by the LLM as it is.
"""
import json
import logging
import os
import time
from dataclasses import asdict

import numpy as np

from recbole_llm4msr.align.finetune import (
    finetune,
    is_finished,
    load_for_training,
    loss_plot,
    save_model,
)
from recbole_llm4msr.atomic import atomic_path, atomic_write, atomic_write_json
from recbole_llm4msr.knowledge.files import DatasetFiles, dataset_settings
from recbole_llm4msr.knowledge.fingerprint import file_digest, text_digest
from recbole_llm4msr.knowledge.items import build_item_store, item_prompt, missing_texts
from recbole_llm4msr.knowledge.llm import KnowledgeLLM, file_identity
from recbole_llm4msr.knowledge.store import slug
from recbole_llm4msr.tslrec.samples import sft_samples
from recbole_llm4msr.tslrec.settings import TSLRecError

logger = logging.getLogger("llm4msr-tslrec")


def default_out(settings, cache_root=None):
    """``<cache>/tslrec/<dataset>/<backbone>-k<K>-<llm>-<sft|raw>-<digest of the settings and the data>``."""
    root = cache_root or os.environ.get("RECBOLE_LLM4MSR_CACHE",
                                        os.path.join(os.path.expanduser("~"), ".cache", "recbole_llm4msr"))
    inter = os.path.join(settings.data_path, settings.dataset, f"{settings.dataset}.inter")
    key = text_digest({"settings": settings.identity(),
                       "data": file_digest(inter) if os.path.isfile(inter) else None})[:10]
    name = f"{settings.backbone}-k{settings.k}-{slug(os.path.basename(str(settings.llm).rstrip('/')))}-" \
           f"{'sft' if settings.sft else 'raw'}-{key}"
    return os.path.join(root, "tslrec", slug(settings.dataset), name)


def item_texts(settings):
    """{item token: text} from the dataset's ``item_text_fields``; items without text are an error unless
    ``allow_id_text`` (then ``item <id>``, with a warning)."""
    conf = dataset_settings(settings.dataset, settings.data_path, list(settings.config_files))
    files = DatasetFiles(settings.dataset, os.path.join(settings.data_path, settings.dataset), conf)
    if not conf.get("item_text_fields"):
        if not settings.allow_id_text:
            raise TSLRecError(f"dataset '{settings.dataset}' has no item_text_fields (columns of {files.item_file} "
                              f"that describe items); set them in a --config_files YAML, or pass --allow_id_text "
                              f"to write items as 'item <id>'")
        return {}
    return {str(k): v for k, v in files.item_texts(settings.item_text_words).items()}


def with_id_text(items, texts, allow_id_text, dataset):
    empty = missing_texts(items, texts)
    if empty and not allow_id_text:
        raise TSLRecError(f"dataset '{dataset}': {len(empty)} of {len(items)} item(s) have no text (e.g. {empty[:5]}); "
                          f"fill item_text_fields, or pass --allow_id_text to write them as 'item <id>'")
    if empty:
        logger.warning(f"{len(empty)} item(s) without text are written as 'item <id>' (--allow_id_text)")
    return {i: texts.get(i) if i not in empty else f"item {i}" for i in items}


# ---------------------------------------------------------------------------------------------- stage 0
def pretrain(settings, out, show_progress=True):
    """Train the backbone with RecBole; returns (item tokens, embeddings [n, d], {user: training sequence}, info)."""
    import torch
    from recbole.data import data_preparation
    from recbole.utils import ModelType, init_logger, init_seed

    from recbole_llm4msr.config import MultiScenarioConfig
    from recbole_llm4msr.registry import create_dataset, get_model, get_trainer

    config_dict = {"data_path": settings.data_path, "epochs": settings.pretrain_epochs, "seed": settings.seed,
                   "show_progress": show_progress, "checkpoint_dir": os.path.join(out, ".pretrain"),
                   "device": settings.device, "use_gpu": str(settings.device).startswith("cuda"),
                   **settings.pretrain_config}
    config = MultiScenarioConfig(model=settings.backbone, dataset=settings.dataset,
                                 config_file_list=list(settings.config_files) or None, config_dict=config_dict)
    if config["MODEL_TYPE"] != ModelType.SEQUENTIAL:
        raise TSLRecError(f"--backbone {settings.backbone} is not a sequential model (TSLRec clusters a sequential "
                          f"recommender's item embeddings: SASRec, GRU4Rec, ...)")
    loaded = (config["load_col"] or {}).get("inter")
    if not config["TIME_FIELD"] or (loaded is not None and config["TIME_FIELD"] not in loaded):
        raise TSLRecError(f"dataset '{settings.dataset}' has no order column for a sequential split: TIME_FIELD "
                          f"({config['TIME_FIELD']}) must be a loaded column of the .inter file (load_col)")
    init_seed(config["seed"], config["reproducibility"])
    init_logger(config)
    dataset = create_dataset(config)
    train, valid, _ = data_preparation(config, dataset)
    init_seed(config["seed"], config["reproducibility"])
    model = get_model(settings.backbone)(config, train._dataset).to(config["device"])
    # resumable: a finished fit is recorded in pretrain-checkpoint.json (written atomically after it); a killed one
    # continues from RecBole's last checkpoint (<name>.last.pth, written after every epoch)
    marker = os.path.join(out, "pretrain-checkpoint.json")
    if os.path.isfile(marker):
        done = _load_json(marker)
        best, checkpoint, fit_seconds = done["best_valid"], done["checkpoint"], done.get("seconds")
        fit_seconds_earlier = fit_seconds or 0.0  # spent by an earlier call
        logger.info(f"pre-training finished earlier: {checkpoint}")
    else:
        trainer = get_trainer(config["MODEL_TYPE"], settings.backbone)(config, model)
        folder = config["checkpoint_dir"]
        last = sorted(f for f in os.listdir(folder) if f.endswith(".last.pth")) if os.path.isdir(folder) else []
        if last:
            logger.warning(f"resuming the pre-training from {last[-1]}")
            trainer.resume_checkpoint(os.path.join(folder, last[-1]))
        start = time.perf_counter()
        best, _ = trainer.fit(train, valid, saved=True, show_progress=show_progress)
        checkpoint, fit_seconds = trainer.saved_model_file, round(time.perf_counter() - start, 1)
        fit_seconds_earlier = 0.0
        atomic_write_json(marker, {"checkpoint": checkpoint, "best_valid": float(best), "seconds": fit_seconds})
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)["state_dict"]
    model.load_state_dict(state)
    emb = getattr(model, "item_embedding", None)
    if emb is None:
        raise TSLRecError(f"{settings.backbone} has no item_embedding to cluster")
    tokens = [str(t) for t in dataset.field2id_token[dataset.iid_field]]
    weights = emb.weight.detach().cpu().numpy()[: len(tokens)]
    sequences = training_sequences(train._dataset)
    info = {"backbone": settings.backbone, "best_valid": float(best), "valid_metric": config["valid_metric"],
            "epochs": settings.pretrain_epochs, "users": len(sequences), "items": len(tokens) - 1,
            "fit_seconds": fit_seconds, "fit_seconds_earlier": fit_seconds_earlier}
    return tokens[1:], weights[1:], sequences, info


def training_sequences(train_dataset):
    """{user token: [item tokens]} of RecBole's training part of a sequential dataset (after augmentation each
    training row is (user, the items before, the target): a user's sequence is the first row's first item, then
    every training target in order)."""
    inter = train_dataset.inter_feat
    uid, iid = train_dataset.uid_field, train_dataset.iid_field
    list_field = iid + train_dataset.config["LIST_SUFFIX"]
    length_field = train_dataset.config["ITEM_LIST_LENGTH_FIELD"]
    users = inter[uid].numpy()
    targets = inter[iid].numpy()
    firsts = inter[list_field][:, 0].numpy()
    lengths = inter[length_field].numpy()
    user_tok, item_tok = train_dataset.field2id_token[uid], train_dataset.field2id_token[iid]
    max_length = int(train_dataset.config["MAX_ITEM_LIST_LENGTH"])
    out, seen_length = {}, {}
    for u, t, f, n in zip(users, targets, firsts, lengths):
        key = str(user_tok[u])
        if key not in out:
            if n != 1:
                raise TSLRecError(f"training rows of user {key} do not start with a one-item history; the dataset is "
                                  f"not RecBole's augmented sequential training part")
            out[key] = [str(item_tok[f])]
        elif n < seen_length[key] or (n == seen_length[key] and n < max_length):  # lists stop growing at the cap
            raise TSLRecError(f"training rows of user {key} are out of order")
        seen_length[key] = n
        out[key].append(str(item_tok[t]))
    return out


# ---------------------------------------------------------------------------------------------- stage 1
def cluster(tokens, embeddings, k, seed=0):
    """{item token: category} by k-means over the item embeddings."""
    from sklearn.cluster import KMeans

    if k < 2 or k > len(tokens):
        raise TSLRecError(f"--k {k} latent categories cannot be found among {len(tokens)} items; choose 2 <= k <= "
                          f"{len(tokens)}")
    labels = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(np.asarray(embeddings, dtype=np.float64))
    return {t: int(c) for t, c in zip(tokens, labels)}


def sft(settings, out, sequences, texts, categories, show_progress=True):
    """Stage 1b: the SFT samples (``samples.jsonl``) and the LoRA-fine-tuned LLM in ``out/model`` (reused when
    finished; the fine-tuning itself resumes); returns the model directory."""
    model_dir = os.path.join(out, "model")
    samples = sft_samples(sequences, texts, categories, settings.k, settings.max_history, settings.max_users,
                          settings.seed)
    if len(samples) < settings.lora.batch_size:
        raise TSLRecError(f"{len(samples)} SFT sample(s) (one per user) is below one batch "
                          f"({settings.lora.batch_size}); raise --max_users or lower --batch_size")
    if is_finished(model_dir):
        return model_dir
    atomic_write(os.path.join(out, "samples.jsonl"), lambda f: f.writelines(
        json.dumps({"user": u, "prompt": p, "answer": a, "target": [round(x, 6) for x in d.tolist()]},
                   ensure_ascii=False) + "\n" for u, p, a, d in samples))
    name, tokenizer, model = load_for_training(settings.llm, settings.device)
    merged, history = finetune(model, tokenizer, [(p, a) for _, p, a, _ in samples], out, settings.lora,
                               progress=show_progress)
    loss_plot(history["losses"], os.path.join(out, "loss.png"),
              f"{settings.dataset}: TSLRec SFT of {name}, {len(samples)} users, k={settings.k}")
    return save_model(merged, tokenizer, out, {
        "base_llm": str(settings.llm), "base_model": name, "base_identity": file_identity(settings.llm),
        "task": "tslrec-sft", "dataset": settings.dataset, "samples": len(samples), "k": settings.k,
        "steps": history["steps"], "first_loss": history["losses"][0], "last_loss": history["losses"][-1],
        "train_seconds": round(history["seconds"], 1), "settings": asdict(settings.lora)})


def _load_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def run(settings, show_progress=True):
    """Run (or resume, or reuse) the pipeline; returns the summary (``store`` is the item store's path)."""
    start = time.perf_counter()
    out = settings.out or default_out(settings)
    os.makedirs(out, exist_ok=True)
    summary_file = os.path.join(out, "tslrec.json")
    if os.path.isfile(summary_file):
        summary = _load_json(summary_file)
        if summary.get("settings") == json.loads(json.dumps(settings.identity(), default=str)):
            logger.info(f"TSLRec pipeline {out} is finished: reusing it")
            return summary
        raise TSLRecError(f"{out} holds a TSLRec run with other settings ({summary_file}); use another --out or "
                          f"delete it")
    from dataset_converters.builtin import ensure_builtin

    ensure_builtin(settings.dataset, settings.data_path)
    texts = item_texts(settings)
    timings, info = {}, {}
    categories = None
    llm_dir = settings.llm
    if settings.sft:
        t = time.perf_counter()
        pre_npz, pre_json = os.path.join(out, "pretrain.npz"), os.path.join(out, "pretrain.json")
        if not os.path.isfile(pre_json):
            tokens, emb, sequences, pinfo = pretrain(settings, out, show_progress)
            with atomic_path(pre_npz) as tmp:
                np.savez(tmp, tokens=np.asarray(tokens, dtype=str), embeddings=emb)
            pinfo["seconds"] = round(time.perf_counter() - t + pinfo.pop("fit_seconds_earlier"), 1)
            atomic_write_json(pre_json, dict(pinfo, sequences=sequences))
        with np.load(pre_npz) as z:
            tokens, emb = [str(x) for x in z["tokens"]], z["embeddings"]
        pinfo = _load_json(pre_json)
        sequences = pinfo.pop("sequences")
        info["pretrain"] = pinfo
        timings["pretrain_s"] = pinfo["seconds"]
        texts = with_id_text(tokens, texts, settings.allow_id_text, settings.dataset)

        t = time.perf_counter()
        cat_file = os.path.join(out, "categories.json")
        if not os.path.isfile(cat_file):
            atomic_write_json(cat_file, cluster(tokens, emb, settings.k, settings.seed))
        categories = _load_json(cat_file)
        sizes = np.bincount(list(categories.values()), minlength=settings.k)
        info["categories"] = {"k": settings.k, "smallest": int(sizes.min()), "largest": int(sizes.max())}
        timings["cluster_s"] = round(time.perf_counter() - t, 1)

        model_dir = sft(settings, out, sequences, texts, categories, show_progress)
        manifest = _load_json(os.path.join(model_dir, "manifest.json"))
        info["sft"] = {k: manifest[k] for k in ("samples", "steps", "first_loss", "last_loss", "train_seconds")}
        timings["sft_s"] = manifest["train_seconds"]
        llm_dir = model_dir
    else:
        tokens = sorted(texts, key=str)
        texts = with_id_text(tokens, texts, settings.allow_id_text, settings.dataset)

    t = time.perf_counter()
    llm = KnowledgeLLM.load(llm_dir, device=settings.device)
    store = build_item_store(settings.dataset, tokens, texts, llm, os.path.join(out, "stores"), categories=categories,
                             pooling=settings.pooling, batch_size=settings.extract_batch_size,
                             show_progress=show_progress)
    timings["extract_s"] = round(time.perf_counter() - t, 1)
    summary = {"dataset": settings.dataset, "out": out, "store": store, "llm": str(llm_dir), "items": len(tokens),
               "example_prompt": item_prompt(texts[tokens[0]], None if categories is None else categories[tokens[0]]),
               "settings": json.loads(json.dumps(settings.identity(), default=str)), **info,
               "seconds": dict(timings, total_s=round(time.perf_counter() - start, 1))}
    atomic_write_json(summary_file, summary, indent=2)
    return summary

