"""Cost of the LLM4MSR enhancement per backbone: training seconds / epoch, inference latency per 1,000 samples and
parameter counts of ``<Backbone>`` vs ``<Backbone>_LLM4MSR`` (targets: <= 1.5x training, <= 1.3x inference).
``--variant NAME:KEY=VALUE[,KEY=VALUE]`` (repeatable) adds LLM4MSR with other settings, measured in the same pass
(e.g. ``--variant factored:meta_generator=factored``): columns ``*_NAME``; ``--tag`` names the output files.

The knowledge store is taken from ``--knowledge_store`` or built / reused with the embedded LLM. Writes
``enhancements-<dataset>.csv`` / ``.md`` into ``--out``.
"""
import argparse
import csv
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import torch  # noqa: E402
from recbole.data import data_preparation  # noqa: E402
from recbole.utils import init_seed  # noqa: E402

from recbole_llm4msr.config import MultiScenarioConfig  # noqa: E402
from recbole_llm4msr.prepare import prepare_knowledge  # noqa: E402
from recbole_llm4msr.model.backbones import BACKBONES  # noqa: E402
from recbole_llm4msr.registry import create_dataset, get_model, get_trainer  # noqa: E402


def parse_variant(text):
    """``NAME:KEY=VALUE[,KEY=VALUE]`` -> (NAME, {KEY: VALUE}) with YAML-typed values."""
    import yaml

    name, sep, rest = text.partition(":")
    pairs = [kv.split("=", 1) for kv in rest.split(",") if kv]
    if not sep or not name or not pairs or any(len(kv) != 2 for kv in pairs):
        raise SystemExit(f"--variant '{text}': expected NAME:KEY=VALUE[,KEY=VALUE]")
    return name, {k: yaml.safe_load(v) for k, v in pairs}


def measure(name, args, store, data, extra=None):
    config = MultiScenarioConfig(model=name, dataset=args.dataset, config_dict={
        "data_path": args.data_path, "state": "WARNING", "show_progress": False, "knowledge_store": store,
        "seed": 2020, **(extra or {})})
    if data is None:
        dataset = create_dataset(config)
        data = data_preparation(config, dataset)
    train, valid, test = data
    init_seed(2020, True)
    model = get_model(name)(config, train._dataset)
    trainer = get_trainer(config["MODEL_TYPE"], name)(config, model)
    for epoch in range(args.epochs + 1):  # the first epoch warms up and is not counted
        trainer._train_epoch(train, epoch)
    train_sec = sum(trainer.train_epoch_seconds[1:]) / args.epochs
    model.eval()
    batches = [b[0] for b in test]
    n = sum(len(b) for b in batches)
    with torch.no_grad():
        for b in batches:  # warm-up
            model.predict(b)
        t = time.perf_counter()
        for _ in range(args.repeat):
            for b in batches:
                model.predict(b)
        infer = (time.perf_counter() - t) / args.repeat / n * 1000
    params = sum(p.numel() for p in model.parameters())
    return {"model": name, "train_sec_per_epoch": round(train_sec, 3), "infer_ms_per_1000": round(infer * 1000, 3),
            "params": params}, data


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="ml-100k-msr")
    p.add_argument("--data_path", default=os.path.join(ROOT, "dataset"))
    p.add_argument("--knowledge_store", default=None)
    p.add_argument("--backbones", nargs="+", default=[b.__name__ for b in BACKBONES])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results"))
    p.add_argument("--variant", action="append", default=[], metavar="NAME:KEY=VALUE[,KEY=VALUE]")
    p.add_argument("--tag", default="", help="output files enhancements-<dataset>-<tag>")
    args = p.parse_args(argv)
    variants = [parse_variant(v) for v in args.variant]
    os.makedirs(args.out, exist_ok=True)
    store = args.knowledge_store
    if store is None:
        config = MultiScenarioConfig(model="MMoE_LLM4MSR", dataset=args.dataset,
                                     config_dict={"data_path": args.data_path, "state": "WARNING"})
        store = prepare_knowledge(config)
    rows = []
    with tempfile.TemporaryDirectory() as work:
        os.chdir(work)
        data = None
        for backbone in args.backbones:
            base, data = measure(backbone, args, store, data)
            enhanced, data = measure(f"{backbone}_LLM4MSR", args, store, data)
            row = {"backbone": backbone, "train_s_epoch": base["train_sec_per_epoch"],
                   "train_s_epoch_llm4msr": enhanced["train_sec_per_epoch"],
                   "train_ratio": round(enhanced["train_sec_per_epoch"] / base["train_sec_per_epoch"], 2),
                   "infer_ms_per_1000": base["infer_ms_per_1000"],
                   "infer_ms_per_1000_llm4msr": enhanced["infer_ms_per_1000"],
                   "infer_ratio": round(enhanced["infer_ms_per_1000"] / base["infer_ms_per_1000"], 2),
                   "params": base["params"], "params_llm4msr": enhanced["params"]}
            for vname, extra in variants:
                other, data = measure(f"{backbone}_LLM4MSR", args, store, data, extra)
                row.update({f"train_s_epoch_{vname}": other["train_sec_per_epoch"],
                            f"train_ratio_{vname}": round(other["train_sec_per_epoch"] / base["train_sec_per_epoch"], 2),
                            f"infer_ms_per_1000_{vname}": other["infer_ms_per_1000"],
                            f"infer_ratio_{vname}": round(other["infer_ms_per_1000"] / base["infer_ms_per_1000"], 2),
                            f"params_{vname}": other["params"]})
            rows.append(row)
            print(row, flush=True)
    base = os.path.join(args.out, f"enhancements-{args.dataset}" + (f"-{args.tag}" if args.tag else ""))
    with open(base + ".csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    head = list(rows[0])
    lines = [f"Cost of LLM4MSR on {args.dataset} ({os.cpu_count()} CPU cores; training: mean of {args.epochs} epochs "
             f"after one warm-up epoch; inference: model.predict over the test split, mean of {args.repeat} passes; "
             f"knowledge store {os.path.basename(store)}"
             + "".join(f"; {n}: {e}" for n, e in variants) + ")", "", "| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    lines += ["| " + " | ".join(str(r[h]) for h in head) + " |" for r in rows]
    with open(base + ".md", "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
