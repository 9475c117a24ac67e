"""Cost of the LLM4MSR enhancement per backbone: training seconds / epoch, inference latency per 1,000 samples and
parameter counts of ``<Backbone>`` vs ``<Backbone>_LLM4MSR`` (targets: <= 1.5x training, <= 1.3x inference).
``--variant NAME:KEY=VALUE[,KEY=VALUE]`` (repeatable) adds LLM4MSR with other settings, measured in the same pass
(e.g. ``--variant factored:meta_generator=factored``): columns ``*_NAME``; ``--tag`` names the output files.

The knowledge store is taken from ``--knowledge_store`` or built / reused with the embedded LLM. Writes
``enhancements-<dataset>.csv`` / ``.md`` into ``--out``.

Also ``enhancements-<dataset>[-<tag>].png``: the training and inference ratios per backbone against the targets.
``--plot CSV`` draws that PNG beside an existing CSV (e.g. one written before the plot existed) and does nothing else.

``flops_ratio*``: matrix-multiply FLOPs per test row of ``predict`` (``torch.utils.flop_counter``), enhanced over
plain: the arithmetic the enhancement adds, the same on every machine (elementwise work, gathers and per-call costs are
not counted; the timings have them).

``--steady_allocator`` (glibc only) keeps the memory freed by one ``predict`` in the process's heap for the next
(``mallopt``: no trimming, no ``mmap`` for blocks under 32 MiB). By default glibc hands large freed blocks back to the
system and the next pass pays a page fault per 4 KiB it touches again: on this 2-core machine that was a third of
STAR's inference time and, varying between processes, most of the noise of a ratio. Both models of a ratio run
under the same allocator either way.

``--processes N`` repeats the whole measurement in N fresh processes, one after another, and reports each column's
median over them, with the lowest and highest ratio (``*_range``): on a 2-core machine the backbone's own speed moves
by up to ~25% between processes (memory layout, the state of the machine), and a single process's ratio with it.
"""
import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import torch  # noqa: E402
from recbole.data import data_preparation  # noqa: E402
from recbole.utils import init_seed  # noqa: E402

from recbole_llm4msr.atomic import atomic_path, atomic_write_csv, atomic_write_text  # noqa: E402
from recbole_llm4msr.config import MultiScenarioConfig  # noqa: E402
from recbole_llm4msr.prepare import prepare_knowledge  # noqa: E402
from recbole_llm4msr.model.backbones import BACKBONES  # noqa: E402
from recbole_llm4msr.registry import create_dataset, get_model, get_trainer  # noqa: E402


def steady_allocator():
    """glibc's ``mallopt``: freed blocks stay in the heap (M_TRIM_THRESHOLD 1 GiB, M_MMAP_THRESHOLD 32 MiB, which
    also stops glibc moving the threshold). -> True when set; False where there is no glibc (nothing changed)."""
    import ctypes
    import ctypes.util

    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
    return bool(mallopt(m_mmap_threshold, 32 << 20)) and bool(mallopt(m_trim_threshold, 1 << 30))


def minor_faults():
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def parse_variant(text):
    """``NAME:KEY=VALUE[,KEY=VALUE]`` -> (NAME, {KEY: VALUE}) with YAML-typed values."""
    import yaml

    name, sep, rest = text.partition(":")
    pairs = [kv.split("=", 1) for kv in rest.split(",") if kv]
    if not sep or not name or not pairs or any(len(kv) != 2 for kv in pairs):
        raise SystemExit(f"--variant '{text}': expected NAME:KEY=VALUE[,KEY=VALUE]")
    return name, {k: yaml.safe_load(v) for k, v in pairs}


def train(name, args, store, data, extra=None):
    """Build ``name``, train it ``args.epochs`` epochs after one warm-up epoch -> (model, seconds / epoch, data)."""
    config = MultiScenarioConfig(model=name, dataset=args.dataset, config_dict={
        "data_path": args.data_path, "state": "WARNING", "show_progress": False, "knowledge_store": store,
        "seed": 2020, **(extra or {})})
    if data is None:
        dataset = create_dataset(config)
        data = data_preparation(config, dataset)
    train_data = data[0]
    init_seed(2020, True)
    model = get_model(name)(config, train_data._dataset).to(config["device"])  # as RecBole's quick start
    trainer = get_trainer(config["MODEL_TYPE"], name)(config, model)
    for epoch in range(args.epochs + 1):  # the first epoch warms up and is not counted
        trainer._train_epoch(train_data, epoch)
    model.eval()
    return model, sum(trainer.train_epoch_seconds[1:]) / args.epochs, data


def synchronize(device):
    """Wait for the device's queued work (a CUDA GPU runs kernels asynchronously: a clock read right after a call
    would time the launches, not the work); nothing to wait for on a CPU."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def device_name(device):
    """What the timings ran on, for the table's header: the GPU's name, or the CPU core count."""
    device = torch.device(device)
    if device.type == "cuda":
        return f"1 {torch.cuda.get_device_name(device)} GPU, {os.cpu_count()} CPU cores"
    return f"{os.cpu_count()} CPU cores"


def params(model):
    return sum(p.numel() for p in model.parameters())


def flops_per_row(model, batch):
    """Matrix-multiply FLOPs of ``model.predict`` per row of ``batch`` (what FlopCounterMode counts)."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.predict(batch)
    return counter.get_total_flops() / len(batch)


def inference_ms(models, batches, repeat):
    """Milliseconds per 1,000 rows of ``model.predict`` over ``batches`` for each model: the passes of all models
    alternate (base, enhanced, variant, base, ...) so that a slow moment of the machine hits them alike, and the
    median pass counts. The batches are on the models' device; on a GPU each pass ends when its work has finished.
    -> (ms per 1,000 rows, minor page faults per pass) per model."""
    n = sum(len(b) for b in batches)
    device = next(models[0].parameters()).device
    times = [[] for _ in models]
    faults = [0] * len(models)
    with torch.no_grad():
        for model in models:  # warm-up
            for b in batches:
                model.predict(b)
        for _ in range(repeat):
            for k, model in enumerate(models):
                synchronize(device)
                f, t = minor_faults(), time.perf_counter()
                for b in batches:
                    model.predict(b)
                synchronize(device)
                times[k].append(time.perf_counter() - t)
                faults[k] += minor_faults() - f
    return [round(statistics.median(ts) / n * 1e6, 3) for ts in times], [round(f / repeat) for f in faults]


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
    p.add_argument("--processes", type=int, default=1, help="repeat in N fresh processes; report the medians")
    p.add_argument("--compile", default=None, metavar="MODE",
                   help="time torch.compile(model.predict, mode=MODE) for every model (e.g. default, reduce-overhead: "
                        "CUDA graphs on a GPU); the compilation happens in the warm-up pass and is not timed")
    p.add_argument("--steady_allocator", action="store_true",
                   help="glibc: keep freed memory in the heap between passes (no page faults per pass; see above)")
    p.add_argument("--plot", default=None, metavar="CSV", help="only draw CSV's ratios as a PNG beside it")
    args = p.parse_args(argv)
    if args.plot:
        with open(args.plot, newline="") as f:
            rows = list(csv.DictReader(f))
        where = rows[0].get("device") or "device not recorded"
        plot_ratios(rows, os.path.splitext(args.plot)[0] + ".png",
                    f"Cost of LLM4MSR ({os.path.basename(args.plot)}; {where})")
        return
    if args.steady_allocator and not steady_allocator():
        raise SystemExit("--steady_allocator needs glibc's mallopt, which this system's C library does not offer")
    variants = [parse_variant(v) for v in args.variant]
    args.out = os.path.abspath(args.out)  # the runs below work in a temporary folder
    os.makedirs(args.out, exist_ok=True)
    store = os.path.abspath(args.knowledge_store) if args.knowledge_store else None
    if store is None:
        config = MultiScenarioConfig(model="MMoE_LLM4MSR", dataset=args.dataset,
                                     config_dict={"data_path": args.data_path, "state": "WARNING"})
        store = prepare_knowledge(config)
    if args.processes > 1:
        rows = over_processes(args, store)
        write_results(rows, args, store, variants)
        return
    rows = []
    home = os.getcwd()
    with tempfile.TemporaryDirectory() as work:
        os.chdir(work)
        data = None
        for backbone in args.backbones:
            base, base_train, data = train(backbone, args, store, data)
            enhanced, enhanced_train, data = train(f"{backbone}_LLM4MSR", args, store, data)
            others = [train(f"{backbone}_LLM4MSR", args, store, data, extra)[:2] for _, extra in variants]
            device = next(base.parameters()).device  # RecBole's config: the GPU when there is one (use_gpu)
            batches = [b[0].to(device) for b in data[2]]  # the test split, where the models are
            models = [base, enhanced] + [m for m, _ in others]
            flops = [flops_per_row(m, batches[0]) for m in models]
            if args.compile:
                for m in models:
                    m.predict = torch.compile(m.predict, mode=args.compile)
            infer, faults = inference_ms(models, batches, args.repeat)

            row = {"backbone": backbone, "train_s_epoch": round(base_train, 3),
                   "train_s_epoch_llm4msr": round(enhanced_train, 3),
                   "train_ratio": round(enhanced_train / base_train, 2),
                   "infer_ms_per_1000": infer[0], "infer_ms_per_1000_llm4msr": infer[1],
                   "infer_ratio": round(infer[1] / infer[0], 2), "params": params(base),
                   "params_llm4msr": params(enhanced), "faults_per_pass": faults[0],
                   "faults_per_pass_llm4msr": faults[1], "device": device_name(device)}
            row.update(kflops_per_row=round(flops[0] / 1e3, 1), flops_ratio=round(flops[1] / flops[0], 2))
            for (vname, _), f in zip(variants, faults[2:]):
                row[f"faults_per_pass_{vname}"] = f
            for (vname, _), (model, seconds), ms in zip(variants, others, infer[2:]):
                row.update({f"train_s_epoch_{vname}": round(seconds, 3),
                            f"train_ratio_{vname}": round(seconds / base_train, 2),
                            f"infer_ms_per_1000_{vname}": ms, f"infer_ratio_{vname}": round(ms / infer[0], 2),
                            f"params_{vname}": params(model)})
            for (vname, _), f in zip(variants, flops[2:]):
                row[f"flops_ratio_{vname}"] = round(f / flops[0], 2)
            rows.append(row)
            print(row, flush=True)
            write_results(rows, args, store, variants, show=False)  # what finished survives a kill (atomic)
        os.chdir(home)
    write_results(rows, args, store, variants)


def over_processes(args, store):
    """Run the measurement in ``args.processes`` fresh processes -> per backbone, the median of every column over
    them, and ``<ratio>_range`` ``"low-high"`` for each ratio column."""
    runs = []
    with tempfile.TemporaryDirectory() as work:
        for k in range(args.processes):
            out = os.path.join(work, str(k))
            cmd = [sys.executable, os.path.abspath(__file__), f"--dataset={args.dataset}", f"--data_path={args.data_path}",
                   f"--knowledge_store={store}", f"--epochs={args.epochs}", f"--repeat={args.repeat}", f"--out={out}",
                   "--backbones", *args.backbones] + [f"--variant={v}" for v in args.variant] + \
                (["--steady_allocator"] if args.steady_allocator else []) + \
                ([f"--compile={args.compile}"] if args.compile else [])
            print(f"process {k + 1} of {args.processes}", flush=True)
            subprocess.run(cmd, check=True)
            with open(os.path.join(out, f"enhancements-{args.dataset}.csv")) as f:
                runs.append(list(csv.DictReader(f)))
    rows = []
    for per_backbone in zip(*runs):
        row = {"backbone": per_backbone[0]["backbone"]}
        for col in per_backbone[0]:
            if col in ("backbone", "device"):
                row[col] = per_backbone[0][col]
                continue
            values = [float(r[col]) for r in per_backbone]
            med = statistics.median(values)
            row[col] = int(med) if col.startswith("params") else round(med, 3 if "ratio" not in col else 2)
            if "ratio" in col:
                row[f"{col}_range"] = f"{min(values):.2f}-{max(values):.2f}"
        rows.append(row)
    return rows


TARGETS = {"train": 1.5, "infer": 1.3}  # the cost targets, as ratios to the plain backbone


def plot_ratios(rows, path, title):
    """Training and inference ratios per backbone (one bar per generator: ``full`` and each variant, with the
    lowest-highest range over processes when there is one) against the targets' lines -> ``path`` (PNG, atomic)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [""] + sorted({k[len("train_ratio_"):] for k in rows[0] if k.startswith("train_ratio_")
                           and not k.endswith("_range")})
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    width = 0.8 / len(names)
    for ax, kind in zip(axes, ("train", "infer")):
        for j, name in enumerate(names):
            col = f"{kind}_ratio" + (f"_{name}" if name else "")
            x = [i + (j - (len(names) - 1) / 2) * width for i in range(len(rows))]
            y = [float(r[col]) for r in rows]
            err = None
            if f"{col}_range" in rows[0]:  # "low-high" over processes, as error bars around the median
                spans = [tuple(map(float, str(r[f"{col}_range"]).split("-"))) for r in rows]
                err = [[max(0.0, v - lo) for v, (lo, _) in zip(y, spans)],
                       [max(0.0, hi - v) for v, (_, hi) in zip(y, spans)]]
            ax.bar(x, y, width, yerr=err, capsize=2, label=name or "full (default)")
        ax.axhline(TARGETS[kind], color="tab:red", linestyle="--", linewidth=1, label=f"target {TARGETS[kind]}x")
        ax.axhline(1.0, color="black", linewidth=0.6)
        ax.set_xticks(range(len(rows)), [r["backbone"] for r in rows], rotation=30, fontsize=8)
        ax.set_title(("training" if kind == "train" else "inference") + " time, LLM4MSR / plain", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def write_results(rows, args, store, variants, show=True):
    """``enhancements-<dataset>[-<tag>].csv`` / ``.md`` in ``args.out`` (``show``: print the table too)."""
    base = os.path.join(args.out, f"enhancements-{args.dataset}" + (f"-{args.tag}" if args.tag else ""))
    atomic_write_csv(base + ".csv", rows)
    head = [h for h in rows[0] if h != "device"]  # the device is in the header line
    where = rows[0].get("device") or f"{os.cpu_count()} CPU cores"
    lines = [f"Cost of LLM4MSR on {args.dataset} ({where}; training: mean of {args.epochs} epochs "
             f"after one warm-up epoch; inference: model.predict over the test split, median of {args.repeat} passes, "
             f"the models' passes alternating; "
             + (f"each column the median over {args.processes} fresh processes, *_range the lowest-highest ratio; "
                if args.processes > 1 else "")
             + ("glibc's allocator steady (--steady_allocator); " if args.steady_allocator else "")
             + (f"predict compiled (torch.compile, mode {args.compile}); " if getattr(args, "compile", None) else "") +
             f"knowledge store {os.path.basename(store)}"
             + "".join(f"; {n}: {e}" for n, e in variants) + ")", "", "| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    lines += ["| " + " | ".join(str(r[h]) for h in head) + " |" for r in rows]
    atomic_write_text(base + ".md", "\n".join(lines) + "\n")
    plot_ratios(rows, base + ".png", f"Cost of LLM4MSR on {args.dataset} ({where})")
    if show:
        print("\n".join(lines))


if __name__ == "__main__":
    main()
