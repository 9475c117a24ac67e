"""ml-100k for sequential recommenders: RecBole's own atomic files, copied from the installed ``recbole`` package.

    python -m dataset_converters.ml100k_seq --out DATA_DIR [--name ml-100k]

RecBole would download ml-100k when ``dataset/ml-100k`` is missing; this package has no network, so the built-in
copies the copy RecBole ships (``recbole/dataset_example/ml-100k``: 100,000 ratings with timestamps, 943 users,
1,682 movies with title, release year and genres) unchanged. No split is written: sequential models use RecBole's
own leave-one-out split (``properties/sequential.yaml``). A folder that already holds ``ml-100k.inter`` (RecBole's
own download) is used as it is.
"""
import argparse
import json
import os
import shutil

from dataset_converters.ml100k import recbole_ml100k_dir
from dataset_converters.writer import ConversionError, read_atomic
from recbole_llm4msr.atomic import building_dir

NAME = "ml-100k"
PARTS = ("inter", "user", "item")


def is_present(folder, name=NAME):
    """A folder with ``<name>.inter`` is a usable ml-100k (ours, or RecBole's own download)."""
    return os.path.isfile(os.path.join(folder, f"{name}.inter"))


def convert(out_dir, name=NAME, source=None, overwrite=False):
    src = source or recbole_ml100k_dir()
    files = {p: os.path.join(src, f"ml-100k.{p}") for p in PARTS}
    for part, path in files.items():
        if not os.path.isfile(path):
            raise ConversionError(f"ml-100k: {path} is missing; expected RecBole's atomic files ml-100k.inter/.user/.item")
    target = os.path.join(out_dir, name)
    if os.path.exists(target) and not overwrite:
        raise ConversionError(f"{target} exists; pass --overwrite to replace it")
    inter = read_atomic(files["inter"])
    stats = {"name": name, "source": "recbole/dataset_example/ml-100k (copied unchanged)",
             "interactions": len(inter), "users": int(inter["user_id"].nunique()),
             "items": int(inter["item_id"].nunique()), "split": "none (sequential models: RecBole's leave-one-out)"}
    os.makedirs(out_dir, exist_ok=True)
    if overwrite and os.path.exists(target):
        shutil.rmtree(target)
    with building_dir(out_dir, name) as tmp:
        for part, path in files.items():
            shutil.copyfile(path, os.path.join(tmp, f"{name}.{part}"))
        with open(os.path.join(tmp, f"{name}.stats.json"), "w", encoding="utf-8") as f:
            json.dump(stats, f, indent=2)
    return target, stats


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--name", default=NAME)
    p.add_argument("--source")
    p.add_argument("--overwrite", action="store_true")
    args = p.parse_args(argv)
    path, stats = convert(args.out, args.name, args.source, args.overwrite)
    print(json.dumps(stats))
    print(f"written: {path}")


if __name__ == "__main__":
    main()
