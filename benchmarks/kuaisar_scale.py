"""Full-size synthetic KuaiSAR: generate files in the real formats, then time the converter and its peak memory.

    python benchmarks/kuaisar_scale.py [--scale 1.0] [--workdir DIR]

Scale 1.0 = the full KuaiSAR_v2 sizes: 14,605,716 rec rows, 5,059,169 search rows, 25,877 users and an item file of
about 1.2 GB (long quoted captions). The conversion runs in a child process whose peak RSS is measured. Writes
``kuaisar-scale.json`` / ``.md`` into ``--out``.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from recbole_llm4msr.atomic import atomic_write_json, atomic_write_text  # noqa: E402

REC_HEADER = ["user_id", "item_id", "duration_ms", "playing_time", "timestamp", "forward", "like", "follow",
              "search_item_related", "search", "click", "time"]
SRC_HEADER = ["keyword", "item_id", "click_cnt", "search_session_id", "item_type", "user_id",
              "search_session_timestamp", "search_source", "search_session_time"]


def write_chunks(path, n, make, chunk=2_000_000):
    first = True
    for start in range(0, n, chunk):
        df = make(start, min(n, start + chunk) - start)
        df.to_csv(path, mode="w" if first else "a", header=first, index=False)
        first = False


def generate(folder, scale, seed=0):
    rng = np.random.default_rng(seed)
    n_rec, n_src = int(14_605_716 * scale), int(5_059_169 * scale)
    n_users, n_items = 25_877, max(1000, int(4_000_000 * scale))
    os.makedirs(folder, exist_ok=True)

    def rec(start, n):
        return pd.DataFrame({
            "user_id": rng.integers(0, n_users, n), "item_id": rng.integers(0, n_items, n),
            "duration_ms": rng.integers(1000, 60000, n), "playing_time": rng.integers(0, 60000, n),
            "timestamp": 1684742000000.0 + np.arange(start, start + n), "forward": 0, "like": 0, "follow": 0,
            "search_item_related": 0, "search": 0, "click": rng.integers(0, 2, n), "time": "2023-05-22 15:53:20",
        })[REC_HEADER]

    def src(start, n):
        return pd.DataFrame({
            "keyword": "[20, 34, 3]", "item_id": rng.integers(0, n_items, n), "click_cnt": rng.integers(0, 3, n),
            "search_session_id": start + np.arange(n), "item_type": "VIDEO", "user_id": rng.integers(0, n_users, n),
            "search_session_timestamp": 1684743000000 + np.arange(start, start + n), "search_source": "USER_INPUT",
            "search_session_time": "2023-05-22",
        })[SRC_HEADER]

    caption = "[" + ", ".join(str(t) for t in range(60)) + "]"  # ~270 bytes, quoted (commas)

    def items(start, n):
        ids = np.arange(start, start + n)
        return pd.DataFrame({
            "item_id": ids, "caption": caption, "author_id": ids % 100000, "item_type": "NORMAL",
            "upload_time": "2023-05-01", "upload_type": "UPLOAD", "first_level_category_id": ids % 40,
            "first_level_category_name": "美食", "first_level_category_name_en": "Food",
            "second_level_category_id": ids % 300, "second_level_category_name": "家常菜",
            "second_level_category_name_en": "Home Cooking", "third_level_category_id": -124,
            "third_level_category_name": "空", "third_level_category_name_en": "empty",
        })

    t = time.perf_counter()
    write_chunks(os.path.join(folder, "rec_inter.csv"), n_rec, rec)
    write_chunks(os.path.join(folder, "src_inter.csv"), n_src, src)
    write_chunks(os.path.join(folder, "item_features.csv"), n_items, items)
    pd.DataFrame({"user_id": np.arange(n_users), "search_active_level": 1, "rec_active_level": 2,
                  "onehot_feat1": 0, "onehot_feat2": 3}).to_csv(os.path.join(folder, "user_features.csv"), index=False)
    sizes = {f: os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder)}
    return {"rec_rows": n_rec, "search_rows": n_src, "items": n_items, "bytes": sizes,
            "generate_seconds": round(time.perf_counter() - t, 1)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--workdir", default=None)
    p.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results"))
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.workdir) as work:
        raw = os.path.join(work, "KuaiSAR_v2")
        info = generate(raw, args.scale)
        print("generated", info, flush=True)
        code = ("import resource, sys, time\n"
                f"sys.path.insert(0, {ROOT!r})\n"
                "from dataset_converters import kuaisar\n"
                "t = time.perf_counter()\n"
                f"kuaisar.convert({raw!r}, {os.path.join(work, 'data')!r}, 'kuaisar')\n"
                "print('SECONDS', time.perf_counter() - t)\n"
                "print('PEAK_MB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)\n")
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr[-3000:])
        out = dict(line.split(" ", 1) for line in proc.stdout.splitlines() if line.startswith(("SECONDS", "PEAK_MB")))
        info.update(convert_seconds=round(float(out["SECONDS"]), 1), peak_rss_mb=round(float(out["PEAK_MB"])),
                    scale=args.scale, cores=os.cpu_count())
    base = os.path.join(args.out, "kuaisar-scale")
    atomic_write_json(base + ".json", info, indent=2)
    gb = sum(info["bytes"].values()) / 1e9
    text = (f"Synthetic KuaiSAR in the real file formats at scale {args.scale} ({info['rec_rows']:,} rec + "
            f"{info['search_rows']:,} search rows, {info['items']:,} items, {gb:.2f} GB of CSV): conversion "
            f"{info['convert_seconds']} s, peak RSS {info['peak_rss_mb']} MB on {info['cores']} CPU cores.\n")
    atomic_write_text(base + ".md", text)
    print(text)


if __name__ == "__main__":
    main()
