"""Does LLM4MSR's knowledge help light users downstream? Test AUC by user activity, against plain and the control.

    python benchmarks/activity_auc.py --dataset ml-100k-msr --seeds 2020,2021,2022 --epochs 30 \\
        --entry "MMoE|0.01" --entry "MMoE_LLM4MSR|0.003" --entry "MMoE_LLM4MSR[shuffle]|0.003" \\
        --set knowledge_norm=none --out benchmarks/results/activity-auc-ml-100k-msr

The k-fold neighbour probe (``benchmarks/fold_probe.py``) finds the default knowledge above every no-LLM bag for the
lightest third of ml-100k-msr's users and level for the rest. This asks whether a trained LLM4MSR shows the same: each
``--entry LABEL|RATE`` (``llm4msr-compare``'s labels, e.g. ``MMoE_LLM4MSR[shuffle]``, at a fixed learning rate, e.g.
the one the harness chose) is trained once per seed exactly as ``llm4msr-compare`` trains it (its merged config and
config hash), its test rows are scored, and the rows are cut into the report's activity groups (users by their number
of training positives, :func:`recbole_llm4msr.knowledge.report.activity_groups`). Per group and label the AUC averaged
over seeds; per group each LLM4MSR label against its plain backbone and against its ``[shuffle]`` control (when both
are entries): the difference of the seed-averaged AUCs with a two-level paired bootstrap 95% interval (every resample
draws the users, each with all their rows, and the seeds, each seed's model paired with the same seed's baseline:
the interval carries the seeds' spread as well as the users'; until session 32 the seeds were held fixed, which read
p_bh 0.010 where the t-test over the same seeds read 0.062), and the paired t-test over seeds.

Per run ``runs/<label>-<seed>.npz`` (test scores, labels, users, the run's config hash and test AUC) is kept, so an
interrupted job resumes; ``table.csv`` / ``table.md``. The test split is read, as every downstream comparison does.
"""
import argparse
import logging
import os
import shutil
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks.knowledge_quality import interval, write_markdown  # noqa: E402
from recbole_llm4msr.atomic import atomic_path, atomic_write_csv  # noqa: E402
from recbole_llm4msr.compare import (  # noqa: E402
    Comparison, corrected, machine, paired_test, parse_label, record_machines)
from recbole_llm4msr.knowledge.report import activity_groups, auc, auc_difference  # noqa: E402

logger = logging.getLogger("activity_auc")
FIELDS = ["dataset", "group", "users", "rows", "label", "baseline", "seeds", "auc", "baseline_auc", "difference",
          "ci95", "p_bootstrap", "p_seeds", "p_bh"]


def parse_entry(text):
    """``"LABEL|RATE"`` -> (label, rate)."""
    label, sep, rate = str(text).rpartition("|")
    try:
        if not sep or not label:
            raise ValueError
        parse_label(label)
        return label, float(rate)
    except ValueError:
        raise SystemExit(f"--entry {text!r}: write LABEL|RATE, e.g. 'MMoE_LLM4MSR[shuffle]|0.003'") from None


def run_file(out, label, seed):
    slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in label)
    return os.path.join(out, "runs", f"{slug}-{seed}.npz")


def test_scores(cmp, label, seed, lr):
    """Train (label, seed, lr) as ``llm4msr-compare`` does and score its test rows with the best checkpoint ->
    {"score", "label", "user", "config_hash", "test_auc"}."""
    from recbole_llm4msr.quick_start import build

    config = cmp.merged_config(label, seed, lr)
    work = tempfile.mkdtemp(prefix="activity-auc-")
    config["checkpoint_dir"] = os.path.join(work, "saved")
    try:
        built = build(config, log=False)
        built.trainer.fit(built.train_data, built.valid_data, saved=True, show_progress=False, verbose=False)
        result = built.trainer.evaluate(built.test_data, load_best_model=True)
        struct = built.trainer.eval_collector.last_struct
        feat = built.test_data._dataset.inter_feat
        labels = feat[config["LABEL_FIELD"]].numpy()
        got = struct.get("data.label").numpy().reshape(-1)
        if not np.array_equal(got, labels):
            raise RuntimeError(f"{label} seed {seed}: the evaluated rows are not the test split's in order")
        users = built.dataset.id2token(config["USER_ID_FIELD"], feat[config["USER_ID_FIELD"]].numpy())
        return {"score": struct.get("rec.score").numpy().reshape(-1), "label": labels, "user": np.asarray(users),
                "config_hash": cmp.config_hash(label, seed, lr), "test_auc": float(result["auc"])}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def scored(cmp, out, label, seed, lr):
    """:func:`test_scores`, kept in ``runs/`` and reused while the run's config hash is the same; a new run also
    records where it ran (``machine``, described in ``out``/machines.json as llm4msr-compare does)."""
    path = run_file(out, label, seed)
    digest = cmp.config_hash(label, seed, lr)
    if os.path.isfile(path):
        kept = dict(np.load(path, allow_pickle=False))
        if str(kept["config_hash"]) == digest:
            return {k: (v.item() if v.ndim == 0 else v) for k, v in kept.items()}
        logger.warning(f"{path} is of another config (hash {kept['config_hash']}, now {digest}): run again")
    run = test_scores(cmp, label, seed, lr)
    run["machine"], where = machine(gpu=cmp.uses_gpu(cmp.run_config(label, seed, lr)[1]))  # as llm4msr-compare
    os.makedirs(os.path.dirname(path), exist_ok=True)
    record_machines(out, {run["machine"]: where})
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **{k: np.asarray(v) for k, v in run.items()})
    logger.info(f"{label} seed {seed}: test AUC {run['test_auc']}")
    return run


def seed_mean_difference(y, a_runs, b_runs, users, n_boot=1000, seed=0):
    """mean over seeds of AUC(a_s) − mean of AUC(b_s) on the same rows, with the report's paired bootstrap over
    ``users`` and the seeds (:func:`~recbole_llm4msr.knowledge.report.auc_difference` with ``paired_lists``: a
    resample draws the users, weighting every seed's and label's rows alike, and the seed pairs (a_s, b_s)) ->
    {"difference", "ci95", "p", "resamples"}; a p of 0 counts as 1 / resamples."""
    d = auc_difference(y, list(a_runs), list(b_runs), users, n_boot, seed, paired_lists=True)
    point = np.mean([auc(y, s) for s in a_runs]) - np.mean([auc(y, s) for s in b_runs])  # of the table's AUCs
    return {"difference": round(float(point), 4) + 0.0, "ci95": d["ci95"], "p": max(d["p"], 1.0 / d["resamples"]),
            "resamples": d["resamples"]}


def pairs(labels):
    """(LLM4MSR label, baseline label) for each enhanced label against its plain backbone and its [shuffle]
    control, where both are among ``labels``."""
    out = []
    for label in labels:
        name, settings = parse_label(label)
        if "_" not in name or settings:
            continue
        backbone = name.split("_")[0]
        for baseline in (backbone, f"{label}[shuffle]"):
            if baseline in labels:
                out.append((label, baseline))
    return out


def table(dataset, runs, train, groups=3, n_boot=1000):
    """Rows of :data:`FIELDS`: per activity group (then all rows) and pair, the seed-averaged AUCs and their
    difference; ``runs`` {label: [run per seed]} (the same seeds, the same test rows), ``train`` the training split
    (user, label) that defines activity."""
    import pandas as pd

    first = next(iter(runs.values()))[0]
    rows = pd.DataFrame({"user": first["user"], "label": first["label"]})
    for label, seeds in runs.items():
        for r in seeds:
            if not (np.array_equal(r["user"], rows["user"]) and np.array_equal(r["label"], rows["label"])):
                raise ValueError(f"{label}: its test rows differ from {next(iter(runs))}'s (another split?)")
    member, per_row = activity_groups(rows, train, groups)
    cuts = [("all", np.ones(len(rows), bool))]
    for g in np.unique(member):
        m = member == g
        cuts.append((f"{g + 1} of {len(np.unique(member))} ({int(per_row[m].min())}-{int(per_row[m].max())} "
                     f"positives)", m))
    out = []
    for name, m in cuts:
        y, who = rows["label"].to_numpy()[m], rows["user"].to_numpy()[m]
        for label, baseline in pairs(list(runs)):
            a = [r["score"][m] for r in runs[label]]
            b = [r["score"][m] for r in runs[baseline]]
            d = seed_mean_difference(y, a, b, who, n_boot)
            _, _, p_seeds = paired_test([auc(y, s) for s in a], [auc(y, s) for s in b])
            out.append({"dataset": dataset, "group": name, "users": len(np.unique(who)), "rows": int(m.sum()),
                        "label": label, "baseline": baseline, "seeds": len(a),
                        "auc": round(float(np.mean([auc(y, s) for s in a])), 4),
                        "baseline_auc": round(float(np.mean([auc(y, s) for s in b])), 4),
                        "difference": d["difference"], "ci95": interval(d).split(" ", 1)[1],
                        "p_bootstrap": d["p"], "p_seeds": None if p_seeds is None else round(p_seeds, 4)})
    for r, p in zip(out, corrected([r["p_bootstrap"] for r in out])):
        r["p_bh"] = round(p, 4)
    return out


def write(out, rows):
    atomic_write_csv(os.path.join(out, "table.csv"), rows, FIELDS)
    write_markdown(
        os.path.join(out, "table.md"),
        "Test AUC by user activity (`benchmarks/activity_auc.py`): users cut into thirds by their training positives; "
        "AUC averaged over the seeds; difference with a paired bootstrap 95% interval over users and seeds (each "
        "resample draws both; p_bootstrap; "
        "Benjamini-Hochberg over the table: p_bh) and the paired t-test over seeds (p_seeds)",
        ["group", "users", "rows", "LLM4MSR", "vs", "AUC", "baseline AUC", "difference [95% CI]", "p_bh", "p_seeds"],
        [[r["group"], r["users"], r["rows"], r["label"], r["baseline"], r["auc"], r["baseline_auc"],
          f"{float(r['difference']):+.4f} {r['ci95']}", r["p_bh"], r["p_seeds"]] for r in rows])


def main(argv=None):
    from recbole_llm4msr.compare import parse_setting
    from recbole_llm4msr.knowledge.files import DatasetFiles, dataset_settings

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="ml-100k-msr")
    p.add_argument("--data_path", default=os.path.join(ROOT, "dataset"))
    p.add_argument("--entry", action="append", required=True, help="LABEL|RATE (repeat)")
    p.add_argument("--seeds", default="2020,2021,2022")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--set", action="append", default=[], help="key=value for every run, as llm4msr-compare's --set")
    p.add_argument("--groups", type=int, default=3)
    p.add_argument("--resamples", type=int, default=1000)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    entries = [parse_entry(e) for e in args.entry]
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        raise SystemExit(f"--seeds {args.seeds!r}: comma-separated whole numbers") from None
    if len(seeds) < 2:
        raise SystemExit(f"--seeds {args.seeds!r}: at least two seeds (the t-test over seeds)")
    if not pairs([label for label, _ in entries]):
        raise SystemExit("--entry: give an LLM4MSR label with its plain backbone and/or its [shuffle] control")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    extra = dict(parse_setting(s) for s in args.set)
    harness = tempfile.mkdtemp(prefix="activity-auc-harness-")  # the harness only lends its configs and hashes
    try:
        cmp = Comparison(args.dataset, [label for label, _ in entries], len(seeds), [entries[0][1]], harness,
                         epochs=args.epochs, data_path=args.data_path, extra=extra, first_seed=seeds[0])
        runs = {label: [scored(cmp, args.out, label, s, lr) for s in seeds] for label, lr in entries}
    finally:
        shutil.rmtree(harness, ignore_errors=True)
    files = DatasetFiles(args.dataset, os.path.join(args.data_path, args.dataset),
                         dataset_settings(args.dataset, args.data_path))
    rows = table(args.dataset, runs, files.train_interactions(), args.groups, args.resamples)
    write(args.out, rows)
    logger.info(f"wrote {os.path.join(args.out, 'table.md')}")
    return rows


if __name__ == "__main__":
    main()
