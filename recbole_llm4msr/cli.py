"""``run_recbole``: RecBole's run_recbole.py with this package's models, datasets and per-scenario evaluation.

    run_recbole --model=DeepFM --dataset=ml-100k-msr [--config_files="a.yaml,b.yaml"] [--epochs=5 ...]

Any other ``--key=value`` is a RecBole parameter (RecBole's Config reads them from the command line). RecBole takes
any key silently; here a key that neither RecBole's, the model's nor the dataset's property files (nor
``--config_files``) name stops the run before it starts, naming the key and the nearest known ones.
"""
import argparse
import re
import sys


def build_parser():
    parser = argparse.ArgumentParser(prog="run_recbole", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", "-m", type=str, default="DeepFM", help="model name (ours or RecBole's)")
    parser.add_argument("--dataset", "-d", type=str, default="ml-100k-msr", help="dataset name")
    parser.add_argument("--config_files", type=str, default=None, help="config files, separated by ',' or ' '")
    parser.add_argument("--nproc", type=int, default=1, help="processes for distributed data-parallel training (GPUs: NCCL, CPUs: gloo)")
    parser.add_argument("--ip", type=str, default="localhost")
    parser.add_argument("--port", type=str, default="5678")
    parser.add_argument("--world_size", type=int, default=-1, help="all processes on all machines (default nproc)")
    parser.add_argument("--group_offset", type=int, default=0, help="global rank of this machine's first process")
    return parser


def command_line_settings(rest):
    """``{key: value}`` of the ``--key=value`` arguments RecBole's Config will read (it skips any other form)."""
    out = {}
    for arg in rest:
        parts = arg[2:].split("=") if arg.startswith("--") else []
        if len(parts) == 2:
            out[parts[0]] = parts[1]
    return out


def check_command_line(model, dataset, rest, config_files=None):
    """A ``--key=value`` no property file of this model and dataset (nor ``config_files``) names is an error
    (:func:`~recbole_llm4msr.config.known_settings`): RecBole would run its defaults without a word. Then the values
    of the model's settings are checked (:func:`~recbole_llm4msr.config.check_values`), before the dataset is loaded
    or a knowledge store built."""
    from recbole_llm4msr.config import check_settings, check_values

    given = command_line_settings(rest)
    check_settings(model, dataset, given, lambda key: f"--{key}", given, config_files)
    check_values(model, dataset, config_files=config_files, command_line=True)


def main(argv=None):
    if argv is not None:
        sys.argv = [sys.argv[0]] + list(argv)  # RecBole's Config reads --key=value from sys.argv
    args, rest = build_parser().parse_known_args()
    config_file_list = [f for f in re.split(r"[,\s]+", args.config_files.strip()) if f] if args.config_files else None

    from recbole_llm4msr.quick_start import run

    try:
        check_command_line(args.model, args.dataset, rest, config_file_list)
        run(args.model, args.dataset, config_file_list=config_file_list, nproc=args.nproc,
            world_size=args.world_size, ip=args.ip, port=args.port, group_offset=args.group_offset)
    except (ValueError, KeyError, FileNotFoundError, FileExistsError, NotImplementedError) as e:
        print(f"run_recbole: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
