"""The knowledge store: vectors of any entity kind (``scenario``, ``user``, ``item``), memory-mappable, with the
generated texts and a fingerprinted header.

Layout of a finished store ``<cache_dir>/<dataset>/<model>-<mode>-<fingerprint key>/``::

    header.json     format, dataset, model, mode, hidden size, dtype, {kind: count}, the fingerprint's parts
    <kind>s.npy     [n, d] float16 (float32 when a value would overflow float16)
    <kind>s.json    the n ids (tokens), in row order
    texts.jsonl     one line per entity: {"kind", "id", "prompt", "text"} (text: what the LLM wrote)

Work in progress lives next to it in ``<store>.work/shard-K-of-N/``: every finished chunk is one
``<kind>-chunk-*.npz`` + ``.jsonl`` pair written atomically, so a killed run restarts where it stopped and loses
nothing finished. When every shard has its ``DONE`` marker, :func:`merge` assembles the store in a temporary
folder and swaps it into place (the finished store appears atomically; ``header.json`` marks it complete).
"""
import glob
import json
import os
import re
import shutil
import time

import numpy as np

from recbole_llm4msr.atomic import atomic_path, atomic_write_json, building_dir, is_temporary

STORE_FORMAT = 2          # 1: scenarios/users only, no fingerprint (refused: rebuild)
FLOAT16_MAX = 65504.0


class StoreError(ValueError):
    """A knowledge store is missing, incomplete, or does not belong to the dataset / model it is used with."""


def slug(text):
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("_")[:80] or "model"


def store_path(cache_dir, dataset, model_name, mode, key):
    return os.path.join(cache_dir, slug(dataset), f"{slug(model_name)}-{mode}-{key}")


def is_complete(path):
    return os.path.isfile(os.path.join(path, "header.json"))


def _vector_dtype(vectors):
    """float16 unless a value would overflow it (then float32: never a silent inf)."""
    vectors = np.asarray(vectors)
    if vectors.size and not np.isfinite(vectors).all():
        raise StoreError("the LLM produced non-finite hidden states (inf / NaN); use llm_dtype: float32")
    if vectors.size and float(np.abs(vectors).max()) > FLOAT16_MAX:
        return np.float32
    return np.float16


class ShardWriter:
    """Writes one shard's finished chunks; knows which ids are already done (resume)."""

    def __init__(self, path, shard_id=0, num_shards=1):
        if not 0 <= shard_id < num_shards:
            raise ValueError(f"--shard-id {shard_id} must be in [0, {num_shards})")
        self.dir = os.path.join(f"{path}.work", f"shard-{shard_id}-of-{num_shards}")
        os.makedirs(self.dir, exist_ok=True)
        for stale in os.listdir(self.dir):
            if is_temporary(stale):
                os.unlink(os.path.join(self.dir, stale))  # half-written chunk of a killed run

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
        with atomic_path(f"{base}.jsonl") as tmp:
            with open(tmp, "w", encoding="utf-8") as f:
                for r in records:
                    f.write(json.dumps(r, ensure_ascii=False) + "\n")
        vectors = np.asarray(vectors)
        with atomic_path(f"{base}.npz") as tmp:  # the .npz is the commit point of the chunk
            np.savez(tmp, ids=np.asarray(ids, dtype=str), vectors=vectors.astype(_vector_dtype(vectors)))

    def mark_done(self, info):
        atomic_write_json(os.path.join(self.dir, "DONE"), info)


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
    if not vectors:
        return ids, None, texts
    dtype = np.float32 if any(v.dtype == np.float32 for v in vectors) else np.float16
    return ids, np.concatenate([v.astype(dtype) for v in vectors]), texts


def chunk_vectors(path, kind):
    """(ids, vectors) of every finished chunk of ``kind`` in ``path``'s unfinished store, all shards (vectors None
    when there is none); e.g. to make user vectors from item vectors before merging."""
    ids, vectors, _ = _read_chunks(f"{path}.work", kind)
    return ids, vectors


def shard_status(path):
    """{shard name: DONE info or None} for the shards that have started."""
    out = {}
    for d in sorted(glob.glob(os.path.join(f"{path}.work", "shard-*"))):
        done = os.path.join(d, "DONE")
        if os.path.isfile(done):
            with open(done, encoding="utf-8") as f:
                out[os.path.basename(d)] = json.load(f)
        else:
            out[os.path.basename(d)] = None
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


def merge(path, header, ids_by_kind):
    """Join every shard's chunks into the final store (atomically). ``ids_by_kind`` ({kind: ids in row order})
    says what the store must hold; anything missing is a clear error."""
    work = f"{path}.work"
    status = shard_status(path)
    unfinished = [k for k, v in status.items() if v is None]
    if unfinished:
        raise StoreError(f"{path}: shard(s) {unfinished} have not finished; run them (same command) before merging")
    counts = {v["num_shards"] for v in status.values()}
    if len(counts) > 1:
        raise StoreError(f"{work}: shards of different --num-shards runs {sorted(counts)}; remove {work} and rerun")
    chunks = {kind: _read_chunks(work, kind) for kind in ids_by_kind}
    for kind, wanted in ids_by_kind.items():
        missing = set(wanted) - set(chunks[kind][0])
        if missing:
            raise StoreError(f"{path}: cannot merge, {len(missing)} {kind}(s) have no vector yet (e.g. "
                             f"{sorted(missing, key=str)[:3]}; shards found: {sorted(status)}); run the missing shards")
    dims = {chunks[k][1].shape[1] for k in ids_by_kind if chunks[k][1] is not None}
    if len(dims) != 1:
        raise StoreError(f"{path}: chunks of different widths {sorted(dims)}; remove {work} and rebuild")
    dtype = np.float32 if any(chunks[k][1].dtype == np.float32 for k in ids_by_kind if chunks[k][1] is not None) \
        else np.float16
    parent, name = os.path.split(path)
    with building_dir(parent, name) as tmp:
        records = []
        for kind, wanted in ids_by_kind.items():
            ids, vectors, texts = chunks[kind]
            row = {t: i for i, t in enumerate(ids)}
            out = np.lib.format.open_memmap(os.path.join(tmp, f"{kind}s.npy"), mode="w+", dtype=dtype,
                                            shape=(len(wanted), vectors.shape[1]))
            order = [row[t] for t in wanted]
            for start in range(0, len(order), 65536):  # bounded memory for millions of rows
                out[start:start + 65536] = vectors[order[start:start + 65536]].astype(dtype)
            out.flush()
            del out
            with open(os.path.join(tmp, f"{kind}s.json"), "w", encoding="utf-8") as f:
                json.dump(list(wanted), f, ensure_ascii=False)
            records += [texts[t] for t in wanted]
        with open(os.path.join(tmp, "texts.jsonl"), "w", encoding="utf-8") as f:
            for r in records:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        header = dict(header, format=STORE_FORMAT, kinds={k: len(v) for k, v in ids_by_kind.items()},
                      hidden_size=int(dims.pop()), dtype=np.dtype(dtype).name,
                      created=time.strftime("%Y-%m-%dT%H:%M:%S"))
        with open(os.path.join(tmp, "header.json"), "w", encoding="utf-8") as f:
            json.dump(header, f, indent=2, ensure_ascii=False)  # written last: its presence marks completeness
    shutil.rmtree(work, ignore_errors=True)
    return path


def update_header(path, **fields):
    """Add ``fields`` to a finished store's header (atomically), e.g. the geometry measured after a build."""
    file = os.path.join(path, "header.json")
    with open(file, encoding="utf-8") as f:
        header = json.load(f)
    header.update(fields)
    atomic_write_json(file, header, indent=2)
    return header


class KnowledgeStore:
    """Read side of a finished store; vectors are memory-mapped, never loaded whole unless asked."""

    def __init__(self, path):
        if not is_complete(path):
            raise StoreError(f"{path} is not a finished knowledge store (no header.json); build it with "
                             f"llm4msr-knowledge (it resumes an interrupted run)")
        self.path = path
        with open(os.path.join(path, "header.json"), encoding="utf-8") as f:
            self.header = json.load(f)
        if self.header.get("format") != STORE_FORMAT or "fingerprint" not in self.header:
            raise StoreError(f"{path} was written by an older version of recbole-llm4msr (store format "
                             f"{self.header.get('format', 1)}, no fingerprint of the data and LLM it was built from), "
                             f"so nothing can vouch that it matches your data: delete it and rebuild "
                             f"(llm4msr-knowledge --dataset={self.header.get('dataset', 'NAME')}, or run_recbole "
                             f"without knowledge_store builds the default one)")
        self._ids, self._vectors, self._rows = {}, {}, {}
        d = self.dim
        for kind, count in self.header["kinds"].items():
            try:
                with open(os.path.join(path, f"{kind}s.json"), encoding="utf-8") as f:
                    self._ids[kind] = json.load(f)
                self._vectors[kind] = np.load(os.path.join(path, f"{kind}s.npy"), mmap_mode="r")
            except (ValueError, OSError) as e:
                raise StoreError(f"{path}: the {kind} files are truncated or corrupt ({e}); delete the folder and "
                                 f"rebuild")
            if self._vectors[kind].shape != (count, d) or len(self._ids[kind]) != count:
                raise StoreError(f"{path}: {kind} vectors {self._vectors[kind].shape} / {len(self._ids[kind])} ids do "
                                 f"not match the header ({count} x {d}); delete the folder and rebuild")

    @property
    def dim(self):
        return int(self.header["hidden_size"])

    def require_dataset(self, name):
        """A clear error unless this store was built for dataset ``name``."""
        if self.header.get("dataset") != name:
            raise StoreError(f"knowledge store {self.path} was built for dataset '{self.header.get('dataset')}', not "
                             f"'{name}'; build one for '{name}' (llm4msr-knowledge --dataset={name})")
        return self

    @property
    def kinds(self):
        return list(self.header["kinds"])

    @property
    def fingerprint(self):
        return self.header["fingerprint"]

    def _check_kind(self, kind):
        if kind not in self._ids:
            raise StoreError(f"knowledge store {self.path} holds no '{kind}' vectors (it holds {self.kinds})")

    def ids(self, kind):
        self._check_kind(kind)
        return self._ids[kind]

    def vectors(self, kind):
        """[n, d] memory-mapped vectors of ``kind``, in :meth:`ids` order."""
        self._check_kind(kind)
        return self._vectors[kind]

    def row(self, kind, token):
        """The row of ``token`` among the ``kind`` vectors, or None."""
        self._check_kind(kind)
        if kind not in self._rows:
            self._rows[kind] = {t: i for i, t in enumerate(self._ids[kind])}
        return self._rows[kind].get(str(token))

    def vector(self, kind, token):
        row = self.row(kind, token)
        return None if row is None else np.asarray(self._vectors[kind][row], dtype=np.float32)

    def texts(self):
        """{(kind, id): record} from texts.jsonl (prompt and generated text)."""
        out = {}
        with open(os.path.join(self.path, "texts.jsonl"), encoding="utf-8") as f:
            for line in f:
                r = json.loads(line)
                out[(r["kind"], r["id"])] = r
        return out
