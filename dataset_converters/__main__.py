"""One CLI for every converter: ``python -m dataset_converters <converter> [args]`` (or ``llm4msr-convert``)."""
import importlib
import sys

from dataset_converters import CONVERTERS
from dataset_converters.writer import ConversionError


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in CONVERTERS:
        print(f"usage: python -m dataset_converters {{{','.join(CONVERTERS)}}} [args] --out DATA_DIR [--name NAME]",
              file=sys.stderr)
        return 2
    module = importlib.import_module(CONVERTERS[argv[0]])
    try:
        module.main(argv[1:])
    except (ConversionError, FileExistsError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
