"""Scale-out benchmarks: DDP training throughput with nproc=1 vs 2 on CPU, and the memory of a training worker
with a memory-mapped knowledge store vs a loaded one.

1. ``run_recbole --nproc=N`` (gloo on CPU) on ``--dataset`` for each ``--models`` entry, ``--epochs`` epochs;
   samples/s = training rows / mean wall seconds per epoch (rank 0's clock; every rank trains its half).
2. A synthetic store of ``--users`` x ``--dim`` float16 vectors (the size of a real one: 1M x 4096 is 8 GB), then
   one worker process per mode that builds the user table the way a model does (``UserKnowledge``) and looks up
   ``--steps`` batches of random users. Reported per worker: peak RSS, private (anonymous) memory and file-backed
   memory (the page cache, shared by every worker on the machine) from ``/proc/self/status``.

Writes ``distributed-<dataset>.json`` and ``.md`` into ``--out``.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from recbole_llm4msr.atomic import atomic_write_json, atomic_write_text  # noqa: E402


def throughput(args, workdir):
    from recbole_llm4msr.distributed import find_free_port

    rows = []
    for model in args.models.split(","):
        for nproc in (1, 2):
            out = os.path.join(workdir, f"{model}-{nproc}.json")
            cmd = [sys.executable, "-m", "recbole_llm4msr.cli", f"--model={model}", f"--dataset={args.dataset}",
                   f"--nproc={nproc}", f"--port={find_free_port()}", f"--epochs={args.epochs}", "--show_progress=False",
                   f"--results_file={out}", "--state=WARNING", f"--data_path={args.data_path}",
                   f"--checkpoint_dir={os.path.join(workdir, 'saved')}", "--eval_step=100"]
            start = time.perf_counter()
            proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True)
            if proc.returncode != 0:
                raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
            res = json.load(open(out))
            sec = res["timing"]["train_seconds_per_epoch"]
            n_train = count_train_rows(args)
            rows.append({"model": model, "nproc": nproc, "train_s_per_epoch": round(sec, 2),
                         "samples_per_s": round(n_train / sec), "wall_s": round(time.perf_counter() - start, 1),
                         "test_auc": res["test"]["auc"]})
            print(rows[-1], flush=True)
    return rows


def count_train_rows(args):
    path = os.path.join(args.data_path, args.dataset, f"{args.dataset}.train.inter")
    with open(path, "rb") as f:
        return sum(1 for _ in f) - 1


def write_store(path, users, dim, seed=0):
    """A finished knowledge store in the real format, written in chunks (never whole in memory)."""
    import numpy as np

    os.makedirs(path, exist_ok=True)
    rng = np.random.default_rng(seed)
    table = np.lib.format.open_memmap(os.path.join(path, "users.npy"), mode="w+", dtype=np.float16,
                                      shape=(users, dim))
    for start in range(0, users, 20000):
        stop = min(users, start + 20000)
        table[start:stop] = rng.standard_normal((stop - start, dim), dtype=np.float32).astype(np.float16)
    table.flush()
    del table
    np.save(os.path.join(path, "scenarios.npy"), np.zeros((2, dim), np.float16))
    json.dump(["a", "b"], open(os.path.join(path, "scenarios.json"), "w"))
    json.dump([str(u) for u in range(users)], open(os.path.join(path, "users.json"), "w"))
    open(os.path.join(path, "texts.jsonl"), "w").close()
    json.dump({"dataset": "synthetic", "hidden_size": dim, "format": 2, "kinds": {"scenario": 2, "user": users},
               "fingerprint": {}, "dtype": "float16"}, open(os.path.join(path, "header.json"), "w"))


WORKER = r"""
import json, resource, sys, time
import numpy as np, torch
sys.path.insert(0, {root!r})
from recbole_llm4msr.knowledge.loader import align
from recbole_llm4msr.knowledge.store import KnowledgeStore
from recbole_llm4msr.layers import KnowledgeTable

mode, path, steps, batch = {mode!r}, {path!r}, {steps}, {batch}
store = KnowledgeStore(path)
n = len(store.ids("user")) + 1  # RecBole id 0 is padding
t = time.perf_counter()
table = KnowledgeTable(align(store, "user", ["[PAD]"] + store.ids("user"), memory=mode, padding=True))
build = time.perf_counter() - t
g = torch.Generator().manual_seed(0)
t = time.perf_counter()
for _ in range(steps):
    out = table(torch.randint(1, n, (batch,), generator=g))
lookup_ms = (time.perf_counter() - t) / steps * 1000
status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
mb = lambda key: int(status[key].split()[0]) / 1024 if key in status else None
print(json.dumps({{"memory": mode, "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                  "private_mb": round(mb("RssAnon")), "file_backed_mb": round(mb("RssFile")),
                  "build_s": round(build, 2), "lookup_ms_per_batch": round(lookup_ms, 2)}}))
"""


def memory(args, workdir):
    path = os.path.join(workdir, "store")
    t = time.perf_counter()
    write_store(path, args.users, args.dim)
    print(f"synthetic store {args.users} x {args.dim} fp16 written in {time.perf_counter() - t:.0f} s", flush=True)
    rows = []
    for mode in ("load", "mmap"):
        code = WORKER.format(root=ROOT, mode=mode, path=path, steps=args.steps, batch=args.batch)
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(proc.stderr[-3000:])
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    return {"users": args.users, "dim": args.dim, "store_mb": round(os.path.getsize(os.path.join(path, "users.npy")) / 2**20),
            "batch": args.batch, "steps": args.steps, "workers": rows}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="ml-100k-msr")
    p.add_argument("--data_path", default=os.path.join(os.getcwd(), "dataset"))
    p.add_argument("--models", default="DeepFM,MMoE")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--users", type=int, default=250_000)
    p.add_argument("--dim", type=int, default=4096)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--batch", type=int, default=2048)
    p.add_argument("--skip", default="", help="throughput and/or memory")
    p.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results"))
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    result = {"cpu_count": os.cpu_count()}
    with tempfile.TemporaryDirectory() as workdir:
        if "throughput" not in args.skip:
            result["throughput"] = throughput(args, workdir)
        if "memory" not in args.skip:
            result["memory"] = memory(args, workdir)
    base = os.path.join(args.out, f"distributed-{args.dataset}")
    atomic_write_json(f"{base}.json", result, indent=2)
    lines = [f"# Scale-out on {os.cpu_count()} CPU cores", ""]
    if "throughput" in result:
        lines += ["| model | nproc | s/epoch | samples/s | test AUC |", "|---|---|---|---|---|"]
        lines += [f"| {r['model']} | {r['nproc']} | {r['train_s_per_epoch']} | {r['samples_per_s']:,} | {r['test_auc']} |"
                  for r in result["throughput"]]
        lines.append("")
    if "memory" in result:
        m = result["memory"]
        lines += [f"Worker memory, user table of {m['users']:,} x {m['dim']} (store file {m['store_mb']:,} MB fp16), "
                  f"{m['steps']} lookups of {m['batch']} random users:", "",
                  "| knowledge_memory | peak RSS MB | private MB | file-backed (shared) MB | build s | ms/batch |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {w['memory']} | {w['peak_rss_mb']:,} | {w['private_mb']:,} | {w['file_backed_mb']:,} | "
                  f"{w['build_s']} | {w['lookup_ms_per_batch']} |" for w in m["workers"]]
    atomic_write_text(f"{base}.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
