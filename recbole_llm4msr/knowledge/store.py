"""The knowledge store: per-scenario and per-user vectors (fp16, memory-mappable), generated texts and a header.

Layout of a finished store ``<cache_dir>/<dataset>/<model>-<mode>-<template hash>/``::

    header.json     dataset, model, hidden size, dtype, mode, template hash, counts, creation time
    scenarios.npy   [S, d] float16      scenarios.json  the S scenario names, in row order
    users.npy       [U, d] float16      users.json      the U user tokens, in row order
    texts.jsonl     one line per scenario / user: {"kind", "id", "prompt", "text"} (text: what the LLM wrote)

Work in progress lives next to it in ``<store>.work/shard-K-of-N/``: every finished chunk of users is one
``chunk-*.npz`` + ``chunk-*.jsonl`` pair written atomically, so a killed run restarts where it stopped and loses
no finished user. When every shard has its ``DONE`` marker, :func:`merge` assembles the store in a temporary
folder and renames it into place (the finished store appears atomically). Different models, modes or templates get
different folders, so vectors are never mixed.
"""
import glob
import json
import os
import re
import shutil
import tempfile
import time

import numpy as np

STORE_DTYPE = np.float16


class StoreError(ValueError):
    """A knowledge store is missing, incomplete, or does not belong to the dataset / model it is used with."""


def slug(text):
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("_")[:80] or "model"


def store_path(cache_dir, dataset, model_name, mode, template_hash):
    return os.path.join(cache_dir, slug(dataset), f"{slug(model_name)}-{mode}-{template_hash}")


def is_complete(path):
    return os.path.isfile(os.path.join(path, "header.json"))


def _atomic_json(path, obj):
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False)
    os.replace(tmp, path)


class ShardWriter:
    """Writes one shard's finished chunks; knows which ids are already done (resume)."""

    def __init__(self, path, shard_id=0, num_shards=1):
        if not 0 <= shard_id < num_shards:
            raise ValueError(f"--shard-id {shard_id} must be in [0, {num_shards})")
        self.dir = os.path.join(f"{path}.work", f"shard-{shard_id}-of-{num_shards}")
        os.makedirs(self.dir, exist_ok=True)
        for stale in glob.glob(os.path.join(self.dir, "*.tmp-*")):
            os.unlink(stale)  # half-written chunk of a killed run

    def done_ids(self, kind):
        done = set()
        for npz in sorted(glob.glob(os.path.join(self.dir, f"{kind}-chunk-*.npz"))):
            with np.load(npz, allow_pickle=False) as z:
                done.update(z["ids"].tolist())
        return done

    def write_chunk(self, kind, ids, vectors, records):
        """Persist one finished chunk: ``ids`` (tokens), ``vectors`` [n, d], ``records`` (dicts for texts.jsonl)."""
        index = len(glob.glob(os.path.join(self.dir, f"{kind}-chunk-*.npz")))
        base = os.path.join(self.dir, f"{kind}-chunk-{index:06d}")
        with open(f"{base}.jsonl.tmp-{os.getpid()}", "w", encoding="utf-8") as f:
            for r in records:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        os.replace(f"{base}.jsonl.tmp-{os.getpid()}", f"{base}.jsonl")
        tmp = f"{base}.tmp-{os.getpid()}.npz"
        np.savez(tmp, ids=np.asarray(ids, dtype=str), vectors=np.asarray(vectors, dtype=STORE_DTYPE))
        os.replace(tmp, f"{base}.npz")  # the .npz is the commit point of the chunk

    def mark_done(self, info):
        _atomic_json(os.path.join(self.dir, "DONE"), info)


def _read_chunks(work_dir, kind):
    ids, vectors, texts = [], [], {}
    for npz in sorted(glob.glob(os.path.join(work_dir, "shard-*", f"{kind}-chunk-*.npz"))):
        with np.load(npz, allow_pickle=False) as z:
            ids.extend(z["ids"].tolist())
            vectors.append(z["vectors"])
        with open(npz[: -len(".npz")] + ".jsonl", encoding="utf-8") as f:
            for line in f:
                r = json.loads(line)
                texts[r["id"]] = r
    return ids, (np.concatenate(vectors) if vectors else None), texts


def shard_status(path):
    """{shard name: DONE info or None} for the shards that have started."""
    out = {}
    for d in sorted(glob.glob(os.path.join(f"{path}.work", "shard-*"))):
        done = os.path.join(d, "DONE")
        out[os.path.basename(d)] = json.load(open(done)) if os.path.isfile(done) else None
    return out


class MergeLock:
    """``<store>.merge.lock``, created exclusively: of shards finishing at the same moment, one merges."""

    def __init__(self, path, force=False):
        self.file = f"{path}.merge.lock"
        self.force = force
        self.held = False

    def __enter__(self):
        if self.force and os.path.exists(self.file):
            os.remove(self.file)  # an explicit --merge takes over a lock left by a killed process
        try:
            fd = os.open(self.file, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return self
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        self.held = True
        return self

    def __exit__(self, *exc):
        if self.held:
            os.remove(self.file)


def merge(path, header, scenario_names, user_ids):
    """Join every shard's chunks into the final store (atomically). Fails clearly if anything is missing."""
    work = f"{path}.work"
    status = shard_status(path)
    unfinished = [k for k, v in status.items() if v is None]
    if unfinished:
        raise StoreError(f"{path}: shard(s) {unfinished} have not finished; run them (same command) before merging")
    counts = {v["num_shards"] for v in status.values()}
    if len(counts) > 1:
        raise StoreError(f"{work}: shards of different --num-shards runs {sorted(counts)}; remove {work} and rerun")
    s_ids, s_vecs, s_texts = _read_chunks(work, "scenario")
    u_ids, u_vecs, u_texts = _read_chunks(work, "user")
    missing_s = [s for s in scenario_names if s not in set(s_ids)]
    missing_u = set(user_ids) - set(u_ids)
    if missing_s or missing_u:
        raise StoreError(f"{path}: cannot merge, {len(missing_u)} user(s) and scenario(s) {missing_s} have no vector "
                         f"yet (shards found: {sorted(status)}); run the missing shards")
    s_row = {s: i for i, s in enumerate(s_ids)}
    u_row = {u: i for i, u in enumerate(u_ids)}
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=parent, prefix=f".{os.path.basename(path)}.merge-")
    try:
        np.save(os.path.join(tmp, "scenarios.npy"), s_vecs[[s_row[s] for s in scenario_names]].astype(STORE_DTYPE))
        users = np.lib.format.open_memmap(os.path.join(tmp, "users.npy"), mode="w+", dtype=STORE_DTYPE,
                                          shape=(len(user_ids), u_vecs.shape[1]))
        users[:] = u_vecs[[u_row[u] for u in user_ids]]
        users.flush()
        del users
        with open(os.path.join(tmp, "scenarios.json"), "w", encoding="utf-8") as f:
            json.dump(list(scenario_names), f, ensure_ascii=False)
        with open(os.path.join(tmp, "users.json"), "w", encoding="utf-8") as f:
            json.dump(list(user_ids), f, ensure_ascii=False)
        with open(os.path.join(tmp, "texts.jsonl"), "w", encoding="utf-8") as f:
            for r in [s_texts[s] for s in scenario_names] + [u_texts[u] for u in user_ids]:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        header = dict(header, num_users=len(user_ids), num_scenarios=len(scenario_names),
                      hidden_size=int(u_vecs.shape[1]), dtype="float16",
                      created=time.strftime("%Y-%m-%dT%H:%M:%S"))
        with open(os.path.join(tmp, "header.json"), "w", encoding="utf-8") as f:
            json.dump(header, f, indent=2, ensure_ascii=False)  # written last: its presence marks completeness
        os.chmod(tmp, 0o755)
        if os.path.exists(path):
            shutil.rmtree(path)
        os.rename(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(work, ignore_errors=True)
    return path


class KnowledgeStore:
    """Read side of a finished store; vectors are memory-mapped (fp16), never loaded whole unless asked."""

    def __init__(self, path):
        if not is_complete(path):
            raise StoreError(f"{path} is not a finished knowledge store (no header.json); build it with "
                             f"llm4msr-knowledge (it resumes an interrupted run)")
        self.path = path
        with open(os.path.join(path, "header.json"), encoding="utf-8") as f:
            self.header = json.load(f)
        with open(os.path.join(path, "scenarios.json"), encoding="utf-8") as f:
            self.scenario_names = json.load(f)
        with open(os.path.join(path, "users.json"), encoding="utf-8") as f:
            self.user_ids = json.load(f)
        try:
            self.scenario_vectors = np.load(os.path.join(path, "scenarios.npy"), mmap_mode="r")
            self.user_vectors = np.load(os.path.join(path, "users.npy"), mmap_mode="r")
        except (ValueError, OSError) as e:
            raise StoreError(f"{path}: a vector file is truncated or corrupt ({e}); delete the folder and rebuild")
        d = self.header["hidden_size"]
        if self.user_vectors.shape != (len(self.user_ids), d) or self.scenario_vectors.shape != (len(self.scenario_names), d):
            raise StoreError(f"{path}: vector shapes {self.user_vectors.shape} / {self.scenario_vectors.shape} do not "
                             f"match the header ({len(self.user_ids)} users, {len(self.scenario_names)} scenarios, "
                             f"dim {d}); delete the folder and rebuild")
        self._user_row = None

    @property
    def dim(self):
        return int(self.header["hidden_size"])

    def user_row(self, token):
        if self._user_row is None:
            self._user_row = {u: i for i, u in enumerate(self.user_ids)}
        return self._user_row.get(str(token))

    def user_vector(self, token):
        row = self.user_row(token)
        return None if row is None else np.asarray(self.user_vectors[row], dtype=np.float32)

    def texts(self):
        """{(kind, id): record} from texts.jsonl (prompt and generated text)."""
        out = {}
        with open(os.path.join(self.path, "texts.jsonl"), encoding="utf-8") as f:
            for line in f:
                r = json.loads(line)
                out[(r["kind"], r["id"])] = r
        return out
