"""ml-100k-msr: MovieLens-100k as three age-group scenarios, from the copy inside the installed ``recbole``.

    python -m dataset_converters.ml100k --out DATA_DIR [--name ml-100k-msr] [--source DIR]

Expected counts (young / middle / senior): 26,551 / 35,444 / 38,005 interactions.
"""
import argparse
import importlib.util
import os

from dataset_converters.movielens import build_movielens, write_movielens
from dataset_converters.writer import ConversionError, add_common_args, finish, read_atomic

NAME = "ml-100k-msr"


def recbole_ml100k_dir():
    spec = importlib.util.find_spec("recbole")
    if spec is None or not spec.submodule_search_locations:
        raise ConversionError("ml-100k-msr is built from the ml-100k copy inside the 'recbole' package: "
                              "pip install recbole==1.2.1")
    return os.path.join(list(spec.submodule_search_locations)[0], "dataset_example", "ml-100k")


def convert(out_dir, name=NAME, source=None, seed=2020, overwrite=False):
    src = source or recbole_ml100k_dir()
    files = {ext: os.path.join(src, f"ml-100k.{ext}") for ext in ("inter", "user", "item")}
    for ext, path in files.items():
        if not os.path.isfile(path):
            raise ConversionError(f"ml-100k: {path} is missing; expected RecBole's atomic files ml-100k.inter/.user/.item")
    inter, user, item = (read_atomic(files[e]) for e in ("inter", "user", "item"))
    inter = build_movielens(inter, user, files["inter"])
    return write_movielens(out_dir, name, inter, user, item, "recbole/dataset_example/ml-100k", "class",
                           ["movie_title", "class"], seed, overwrite)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser, NAME)
    parser.add_argument("--source", help="folder with ml-100k.inter/.user/.item (default: the recbole package's)")
    args = parser.parse_args(argv)
    path, stats = convert(args.out, args.name, args.source, args.seed, args.overwrite)
    finish(path, stats, args.name)


if __name__ == "__main__":
    main()
