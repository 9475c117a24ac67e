"""``amazon-art-office``: two Amazon scenarios (Arts, Crafts & Sewing / Office Products) from the project's shared
data, as implicit feedback with sampled negatives and a time-ordered split. Built on first use.

The recipe is the CSV converter with these settings (the README shows the same command)::

    python -m dataset_converters csv ../shared/data/amazon_art_office.csv --user_col user_id --item_col item_id \\
        --scenario_col scenario --negatives 1 --order_col position --split time \\
        --item_file ../shared/data/amazon_art_office_items.csv --item_text_cols title,categories \\
        --out DATA_DIR --name amazon-art-office

* positives: the 208,541 purchases of 9,577 users who bought in both scenarios; the 1,880 repeated
  (user, item, scenario) purchases are kept once (the earliest);
* one negative per positive from the same scenario's items, never an item the user bought (seed 2020);
* split: per user and scenario, the purchases ordered by ``position`` (the purchase order within the user); the last
  10% (at least one for users with three or more) are test, the 10% before them valid, the rest train; a negative
  goes with its positive;
* item text for the prompts: title and category path.

The source folder is ``$LLM4MSR_SHARED_DATA`` or ``../shared/data`` next to the repository.
"""
import argparse
import os

from dataset_converters import csv as csv_conv
from dataset_converters.writer import ConversionError, add_common_args, finish

NAME = "amazon-art-office"
FILES = ("amazon_art_office.csv", "amazon_art_office_items.csv")
RECIPE = dict(user_col="user_id", item_col="item_id", label_col=None, scenario_col="scenario", negatives=1,
              order_col="position", split="time", item_text_cols=["title", "categories"])


def source_dir():
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return os.environ.get("LLM4MSR_SHARED_DATA") or os.path.join(os.path.dirname(here), "shared", "data")


def convert(out_dir, name=NAME, source=None, seed=2020, overwrite=False):
    src = source or source_dir()
    missing = [f for f in FILES if not os.path.isfile(os.path.join(src, f))]
    if missing:
        raise ConversionError(f"amazon-art-office: {missing} not found in {src}; set LLM4MSR_SHARED_DATA to the folder "
                              f"holding {' and '.join(FILES)}")
    return csv_conv.convert(os.path.join(src, FILES[0]), out_dir, name, item_file=os.path.join(src, FILES[1]),
                            seed=seed, overwrite=overwrite, **RECIPE)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default=None, help="folder with the two CSV files (default ../shared/data)")
    add_common_args(parser, NAME)
    a = parser.parse_args(argv)
    path, stats = convert(a.out, a.name, a.source, a.seed, a.overwrite)
    finish(path, stats, a.name)


if __name__ == "__main__":
    main()
