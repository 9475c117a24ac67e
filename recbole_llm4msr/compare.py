"""``llm4msr-compare``: models x seeds on one dataset and one split, with a learning-rate search on a seed that is
not reported, paired tests against the plain backbone and against knowledge controls, a multiple-comparison
correction, a table in the paper's layout and a plot.

    llm4msr-compare --dataset=ml-100k-msr --seeds=3 \\
        --models=DeepFM,MMoE,MMoE_DN,MMoE_EP,MMoE_LLM4MSR,MMoE_LLM4MSR[shuffle] \\
        [--lr_grid=0.001,0.003,0.01] [--epochs=30] [--out=compare/ml-100k-msr] [--set key=value ...]

* **Models** are names (ours or RecBole's) with optional settings in brackets: ``MMoE_LLM4MSR[shuffle]`` /
  ``[zero]`` are the knowledge controls (``knowledge_control``), ``Name[key=value;key=value]`` any setting.
* **Names are checked** before anything runs: an unknown model, or a setting in a label's brackets that its config
  does not know (RecBole would take it silently), is an error naming the label, the key and the nearest known names;
  a ``--set`` key no label reads is a warning when another model reads it, an error when no property file names it
  (settings of your own go in ``--config_files``).
* **Learning rate**: every model runs each rate of ``--lr_grid`` with ``--lr_seed`` (default: the seed before the
  first reported one); the rate with the best validation AUC is then run with the ``--seeds`` reported seeds
  (``--first_seed``, +1, ...). A rate at the edge of the grid is flagged (``†``): the grid may be too narrow.
  A grid of one rate is no search: that rate is used as given, and no ``--lr_seed`` run is made.
* **Tests**: for every scenario and overall, a two-sided paired t-test over the reported seeds of each variant
  against its plain backbone, and of each LLM4MSR model against its controls (``[shuffle]`` / ``[zero]``) when they
  are in the comparison. p-values are corrected with Benjamini-Hochberg over every test of the table
  (``scipy.stats.false_discovery_control``). Marks: ``▲`` / ``▼`` significantly better / worse at raw p < 0.05,
  ``▲▲`` / ``▼▼`` still so after the correction. Every test is a row of ``tests.csv``.
* **Resume**: every run is a row of ``runs.csv`` (rewritten atomically) carrying a hash of its full effective config
  (model settings, seed, rate, epochs, ``--set``, config files, and the digest of the dataset's split files); a rerun
  into the same ``--out`` reuses a row only when the hash matches. A run that crashes is recorded
  (``status=error``) and the rest go on. ``knowledge_norm: auto`` (LLM4MSR's default) is hashed as the normalisation
  it picks on the label's knowledge store, which a comparison builds before it looks for finished runs.
* **Where a run ran**: the hash covers the config and the data, not the machine, and the same config can differ by a
  few thousandths of AUC on another CPU or library build. Every run's row names its ``machine`` (a digest of the
  CPU, logical cores, torch threads, GPU, Python and library versions; ``machines.json`` in ``--out`` holds what each
  digest stands for, merged folders' included), and ``table.md`` says how many machines its reported runs come from.

* **Metric**: ``--metric auc`` (default; CTR models, per-scenario columns) or a ranking metric of RecBole's result
  (``--metric ndcg@10``, ``recall@20``, ``mrr@10``, ...) for sequential / general models under full ranking: it is
  the validation metric of early stopping and of the learning-rate search, the headline column and the one the
  controls are tested on; the table shows every ranking metric of the runs, each tested.

Outputs in ``--out``: ``runs.csv``, ``tests.csv``, ``table.md``, ``auc.png`` (``<metric>.png`` for a ranking metric),
``machines.json``.
"""
import argparse
import csv
import hashlib
import itertools
import json
import os
import platform
import re
import shutil
import statistics
import sys
import tempfile
import traceback
from collections import Counter
from logging import getLogger

from tqdm import tqdm

from recbole_llm4msr.atomic import atomic_write_csv, atomic_write_text, locked
from recbole_llm4msr.settings import hidden_command_line, property_file_settings, unknown_settings_error

FIELDS = ["model", "phase", "seed", "learning_rate", "status", "config_hash", "valid_auc", "valid_logloss",
          "test_auc", "test_logloss", "train_s_per_epoch", "test_ms_per_1000", "params", "epochs", "error", "machine"]
TEST_FIELDS = ["model", "baseline", "relation", "column", "n", "mean", "baseline_mean", "rel_pct", "t", "p_raw",
               "p_corrected", "correction", "test", "mark_raw", "mark_corrected"]
DEFAULT_LR_GRID = (0.001, 0.003, 0.01)
ALPHA = 0.05
CONTROLS = ("shuffle", "zero")
TEST_NAME = "paired t-test, two-sided, over seeds"
CORRECTION = "Benjamini-Hochberg"
# keys that do not change what a run computes (paths, logging) are left out of its config hash
VOLATILE = {"checkpoint_dir", "results_file", "state", "show_progress", "data_path", "device", "gpu_id", "use_gpu",
            "log_wandb", "wandb_project", "local_rank", "single_spec", "resume", "save_last_checkpoint",
            "knowledge_cache_dir", "worker"}


# The knowledge model a run gets when it names none is decided by KnowledgeSpec, not by the config, so the config
# alone does not say which LLM a run used. The hash therefore carries the resolved llm / llm_mode /
# knowledge_user_vector, written only where they differ from the defaults of the time before the embedded default
# changed (SmolLM2, prompt mode, the user-level prompt): rows of earlier runs on the SmolLM2 default keep their hash
# when llm: smollm2 and knowledge_user_vector: prompt are named, and no longer count for a run on the current
# default.
LEGACY_KNOWLEDGE_DEFAULTS = {"llm": "smollm2", "llm_mode": "prompt", "knowledge_user_vector": "prompt"}
# Settings added after runs were first hashed, at the value that computes what runs did before they existed: left
# out of the hash at that value, so adding a setting does not make every earlier row stale.
NEUTRAL_SETTINGS = {"meta_generator": "full", "tslrec_item_text_words": None, "knowledge_out_of_fold": 0,
                    "knowledge_out_of_fold_mode": "out"}
# Settings only a model that reads knowledge depends on: left out of the hash of any other model.
KNOWLEDGE_SETTINGS = ("knowledge_store", "knowledge_norm")


def resolve_knowledge_defaults(config, effective):
    """Put the resolved llm / llm_mode of a user/scenario-knowledge run without an explicit store into
    ``effective`` (the hashed config), and leave out settings at their neutral values, as above."""
    from recbole_llm4msr.knowledge.spec import KnowledgeSpec
    from recbole_llm4msr.prepare import knowledge_kinds

    for key, value in list(LEGACY_KNOWLEDGE_DEFAULTS.items()) + list(NEUTRAL_SETTINGS.items()):
        if key in effective and effective[key] == value:  # named or not, these hash as before they existed
            effective.pop(key)
    kinds = knowledge_kinds(config)
    if not kinds or "item" in kinds or config["knowledge_store"]:
        return effective  # no LLM, or the given store decides the vectors
    spec = KnowledgeSpec.from_config(config)
    for key, value in (("llm", spec.llm), ("llm_mode", spec.mode), ("knowledge_user_vector", spec.user_vector)):
        if value != LEGACY_KNOWLEDGE_DEFAULTS[key]:
            effective[key] = value
    return effective


# ---------------------------------------------------------------------------------------------- names
def parse_label(label):
    """``"MMoE_LLM4MSR[shuffle]"`` -> ``("MMoE_LLM4MSR", {"knowledge_control": "shuffle"})``;
    ``"MMoE[dropout_prob=0.2;embedding_size=8]"`` -> ``("MMoE", {...})``."""
    m = re.fullmatch(r"\s*([^\[\]\s]+)\s*(?:\[(.*)\])?\s*", label)
    if not m:
        raise ValueError(f"model '{label}': expected NAME or NAME[setting;key=value]")
    name, inner = m.group(1), m.group(2)
    settings = {}
    for part in filter(None, (p.strip() for p in (inner or "").split(";"))):
        if "=" in part:
            key, value = parse_setting(part)
            settings[key] = value
        elif part in CONTROLS:
            settings["knowledge_control"] = part
        else:
            raise ValueError(f"model '{label}': '[{part}]' is neither a control ({', '.join(CONTROLS)}) nor key=value")
    return name, settings


def split_models(text):
    """Comma-separated labels; commas inside brackets belong to the label."""
    out, depth, current = [], 0, ""
    for ch in text:
        depth += ch == "["
        depth -= ch == "]"
        if ch == "," and depth == 0:
            out.append(current)
            current = ""
        else:
            current += ch
    out.append(current)
    return [x.strip() for x in out if x.strip()]


def family(label):
    """``(backbone, kind)`` of a label, from the variant list: ``MMoE_LLM4MSR`` -> ``("MMoE", "llm4msr")``,
    ``MMoE_LLM4MSR[shuffle]`` -> ``("MMoE", "llm4msr[shuffle]")``; any other model is its own ``plain`` family."""
    from recbole_llm4msr.model.variants import VARIANTS
    from recbole_llm4msr.registry import get_model

    name, settings = parse_label(label)
    cls = VARIANTS.get(name)
    if cls is None:  # TSLRec variants, stock models
        try:
            cls = get_model(name)
        except ValueError:
            cls = None
    fixed = getattr(cls, "fixed_enhancement", None)
    backbone, kind = (cls.backbone_name, fixed) if fixed else (name, "plain")
    control = settings.get("knowledge_control")
    if control and control != "none":
        kind = f"{kind}[{control}]"
    return backbone, kind


def baselines(label, labels):
    """``[(baseline label, relation)]`` this label is tested against, among ``labels``."""
    backbone, kind = family(label)
    out = []
    if kind != "plain" and backbone in labels:
        out.append((backbone, "vs plain backbone"))
    name, settings = parse_label(label)
    if kind == "plain" or settings.get("knowledge_control", "none") != "none":
        return out
    if settings and name in labels:  # e.g. knowledge from another LLM against the default knowledge
        out.append((name, f"vs {name}"))
    parsed = {other: parse_label(other) for other in labels if other != label}
    for control in CONTROLS:  # the controls of the model with the same settings
        wanted = (name, dict(settings, knowledge_control=control))
        for other, value in parsed.items():
            if value == wanted:
                out.append((other, f"vs {control} control"))
    return out


def control_name(baseline):
    """How the table names a baseline other than the plain backbone: a control by its brackets (``[shuffle]``), the
    default variant a variant with settings is tested against by its name (``vs SASRec_TSLRec``)."""
    return baseline[baseline.index("["):] if "[" in baseline else f"vs {baseline}"


# ---------------------------------------------------------------------------------------------- statistics
def mean_std(values):
    """``mean ± std`` of a cell's values (4 decimals; the mean alone for one value)."""
    return f"{statistics.mean(values):.4f}" + (f" ± {statistics.stdev(values):.4f}" if len(values) > 1 else "")


def paired_test(treated, base):
    """(relative change of the means in %, t statistic, two-sided p of a paired t-test; None with < 2 pairs)."""
    from scipy.stats import ttest_rel

    rel = (statistics.mean(treated) / statistics.mean(base) - 1) * 100
    if len(treated) < 2 or len(treated) != len(base):
        return rel, None, None
    diffs = [a - b for a, b in zip(treated, base)]
    if all(d == diffs[0] for d in diffs):  # zero variance: the t-test is undefined
        return rel, None, (0.0 if diffs[0] != 0 else 1.0)
    res = ttest_rel(treated, base)
    return rel, float(res.statistic), float(res.pvalue)


def corrected(pvalues):
    """Benjamini-Hochberg adjusted p-values (scipy)."""
    from scipy.stats import false_discovery_control

    if not pvalues:
        return []
    return [float(p) for p in false_discovery_control(pvalues, method="bh")]


def mark(rel, p, p_corr, alpha=ALPHA):
    """(raw mark, corrected mark): ▲ / ▼ when p < alpha (better / worse), ▲▲ / ▼▼ when the corrected p is too."""
    if p is None or p >= alpha:
        return "", ""
    arrow = "▲" if rel > 0 else "▼"
    return arrow, arrow * 2 if p_corr is not None and p_corr < alpha else ""


def significant(treated, base, alpha=ALPHA):
    rel, _, p = paired_test(treated, base)
    return p is not None and p < alpha and rel > 0


# ---------------------------------------------------------------------------------------------- the harness
def _row_key(row):
    return tuple(str(row.get(k, "")) for k in ("model", "seed", "learning_rate", "config_hash", "status", "test_auc"))


def machine(gpu=True):
    """(digest, description) of the machine and libraries a run happens on: the CPU model, logical cores, torch's
    threads, the GPU torch sees (only for a run that uses it: ``gpu``, e.g. not with ``use_gpu: False``), the OS,
    Python and the versions of torch, numpy, pandas, scipy and RecBole. Two runs of one config hash on one digest are
    expected to agree exactly (one thread per run); on two digests they may not."""
    from importlib import metadata

    import torch

    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass

    def version(name):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    description = {"cpu": cpu or platform.processor() or platform.machine(), "logical_cpus": os.cpu_count(),
                   "torch_threads": torch.get_num_threads(),
                   "gpu": torch.cuda.get_device_name(0) if gpu and torch.cuda.is_available() else None,
                   "system": f"{platform.system()} {platform.machine()}", "python": platform.python_version(),
                   **{name: version(name) for name in ("torch", "numpy", "pandas", "scipy", "recbole")}}
    digest = hashlib.sha1(json.dumps(description, sort_keys=True).encode()).hexdigest()[:8]
    return digest, description


def record_machines(folder, machines):
    """Add ``machines`` ({digest: description}) to ``folder``/machines.json (under its lock, atomically)."""
    path = os.path.join(folder, "machines.json")
    with locked(path):
        known = {}
        if os.path.isfile(path):
            with open(path) as f:
                known = json.load(f)
        if all(known.get(k) == v for k, v in machines.items()):
            return
        known.update(machines)
        atomic_write_text(path, json.dumps(known, indent=1, sort_keys=True) + "\n")


class Comparison:
    def __init__(self, dataset, models, seeds, lr_grid, out, epochs=30, data_path="dataset/", extra=None,
                 config_files=None, first_seed=2020, lr_seed=None, metric="auc"):
        self.dataset, self.models, self.lr_grid = dataset, list(models), [float(x) for x in lr_grid]
        self.metric = str(metric).lower()
        self.ranking = self.metric not in ("auc", "logloss")
        if self.ranking and not re.fullmatch(r"[a-z]+@\d+", self.metric):
            raise ValueError(f"--metric {metric}: expected auc, logloss or a ranking metric like ndcg@10")
        for label in self.models:
            parse_label(label)  # a malformed label fails before any run
        self.seeds = [first_seed + k for k in range(seeds)]
        self.lr_seed = first_seed - 1 if lr_seed is None else int(lr_seed)
        if self.lr_seed in self.seeds:
            raise ValueError(f"--lr_seed {self.lr_seed} is one of the reported seeds {self.seeds}: the learning rate "
                             f"must be chosen on a seed that is not reported")
        # runs happen in temporary folders: every path is made absolute first
        self.out, self.epochs, self.data_path = os.path.abspath(out), epochs, os.path.abspath(data_path)
        self.extra = dict(extra or {})
        self.config_files = [os.path.abspath(f) for f in config_files] if config_files else None
        self._check_models()  # an unknown model or setting fails before any run, and before any folder is made
        os.makedirs(self.out, exist_ok=True)
        self.csv = os.path.join(self.out, "runs.csv")
        self.rows = self._load()
        self._hashes = {}
        self.unresolved = set()  # labels under knowledge_norm: auto whose knowledge store is not built yet
        self._auto_choice = {}  # label -> what its knowledge_norm: auto resolved to

    def _check_models(self):
        """Every label names a model this package or RecBole knows, and every setting in its brackets is one its
        config knows — RecBole takes any key silently, so a misspelt setting would otherwise run the defaults under
        a label that claims otherwise. A setting counts as known when RecBole's, the model's, the enhancement's or
        the dataset's defaults (or ``--config_files``) name it, or it is a knowledge-store option. A ``--set`` key
        applies to every label of a folder (whose labels are often run by one process each), so one that none of
        these labels reads but some property file names (``meta_rank`` beside a plain backbone) is a warning, and
        only a key no property file names is an error. Then each label's values are checked by its model class
        (:func:`~recbole_llm4msr.config.check_values`): a bad value of a label's or a ``--set`` setting stops the
        comparison before any run, instead of becoming an error row of every run."""
        from recbole_llm4msr.config import check_values, known_settings
        from recbole_llm4msr.registry import get_model

        given = {}  # label -> (model, its own settings, what its runs are given less the per-run keys)
        for label in self.models:
            name, settings = parse_label(label)
            given[label] = (name, settings, {**self.extra, **settings, "data_path": self.data_path})
        known_to_labels, problems = set(), []
        for label, (name, settings, config_dict) in given.items():
            try:
                get_model(name)
            except ValueError as exc:
                raise ValueError(f"--models: label '{label}': {exc}") from None
            known = known_settings(name, self.dataset, config_dict, self.config_files)
            known_to_labels |= known
            problems += [(f"label '{label}'", key, known) for key in settings if key not in known]
        unread = [key for key in self.extra if key not in known_to_labels]
        if unread:
            anywhere = known_to_labels | property_file_settings()
            problems += [("--set", key, anywhere) for key in unread if key not in anywhere]
            ignored = [key for key in unread if key in anywhere]
            if ignored:
                getLogger().warning(f"--set {', '.join(ignored)}: no label of this comparison reads "
                                    f"{'it' if len(ignored) == 1 else 'them'} ({', '.join(self.models)}); "
                                    f"their runs ignore {'it' if len(ignored) == 1 else 'them'}")
        if problems:
            raise unknown_settings_error(problems)
        for label, (name, _, config_dict) in given.items():  # then the values, by the model classes' own checks
            try:
                check_values(name, self.dataset, config_dict, self.config_files)
            except ValueError as exc:
                extra = ";".join(f"{k}={v}" for k, v in self.extra.items())
                raise ValueError(f"--models: label '{label}'{f' with --set {extra}' if extra else ''}: {exc}") from None

    def _load(self):
        self.fields = list(FIELDS)
        return self._read_rows()

    def _read_rows(self):
        if not os.path.isfile(self.csv):
            return []
        with open(self.csv, newline="") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
        self.fields += [c for c in reader.fieldnames or [] if c not in self.fields]
        return rows

    def _record(self, row):
        """Add ``row`` (:meth:`_add`) and rewrite ``runs.csv``, under a lock on the folder and with the rows another
        process wrote there since (two processes given the same ``--out`` both keep their runs)."""
        with locked(self.csv):
            mine = {_row_key(r) for r in self.rows}
            for other in self._read_rows():
                if _row_key(other) not in mine:
                    self._add(other)
            self._add(row)
            self._write()

    def _add(self, row):
        """Add ``row`` in memory. It replaces the row of the same (model, seed, rate) and config hash (a re-run) and
        that key's failed rows; a row of another config hash is kept beside it (another setting's result, which
        :meth:`done` never counts for this config), so merging folders in any order loses no run."""
        row = {k: "" if v is None else str(v) for k, v in row.items()}

        def superseded(r):
            same = r["model"] == row["model"] and r["seed"] == row["seed"] \
                and float(r["learning_rate"]) == float(row["learning_rate"])
            return same and (r.get("config_hash", "") == row.get("config_hash", "") or r["status"] != "ok")

        self.rows = [r for r in self.rows if not superseded(r)]
        self.fields += [k for k in row if k not in self.fields]
        self.rows.append(row)

    def _write(self):
        atomic_write_csv(self.csv, self.rows, self.fields)

    def merge(self, folders):
        """Take the runs of other comparison folders (e.g. labels run in parallel, one folder per process) into this
        one: their ``runs.csv`` rows of this comparison's labels (a row of the same model, seed and rate is
        replaced) and those rows' result JSONs. Whether a row counts is decided as always, by its config hash.
        Rows of other labels stay where they are; how many, per label, is in ``self.merge_left_out``. A row of
        another config of a label (e.g. the same label run with another ``--set``) is kept in ``runs.csv`` as any
        such row is, but its result file is not copied when it has the plain name the current config's run has (how
        many, per label: ``self.merge_other_configs``); one written under its own name (``result_file``, see
        :meth:`result_name`) is copied. Returns the number of rows taken."""
        taken, left_out, other_configs = 0, Counter(), Counter()
        for folder in folders:
            source = os.path.join(folder, "runs.csv")
            if not os.path.isfile(source):
                raise ValueError(f"--merge {folder}: no runs.csv there (not a comparison folder)")
            names = set()
            with open(source, newline="") as f:
                for row in csv.DictReader(f):
                    if row["model"] not in self.models:
                        left_out[row["model"]] += 1
                        continue
                    self._add(row)
                    taken += 1
                    seed, lr = int(row["seed"]), float(row["learning_rate"])
                    plain = run_file_name(row["model"], lr, seed)
                    own = row.get("result_file") or plain  # empty: a row from before the column, the plain name
                    if own != plain or row.get("config_hash") in self.config_hashes(row["model"], seed, lr):
                        names.add(own)
                    else:
                        other_configs[row["model"]] += 1
            if os.path.isfile(os.path.join(folder, "machines.json")):
                with open(os.path.join(folder, "machines.json")) as f:
                    record_machines(self.out, json.load(f))
            runs = os.path.join(folder, "runs")
            if os.path.isdir(runs):
                os.makedirs(os.path.join(self.out, "runs"), exist_ok=True)
                for name in sorted(names & set(os.listdir(runs))):
                    shutil.copy2(os.path.join(runs, name), os.path.join(self.out, "runs", name))
        self.merge_left_out, self.merge_other_configs = dict(left_out), dict(other_configs)
        self._write()  # once, not once per row
        return taken

    # ------------------------------------------------------------------ one run
    def run_config(self, label, seed, lr):
        name, settings = parse_label(label)
        metric = {"valid_metric": self.metric.upper()} if self.ranking else {}  # CTR: the YAML's AUC
        return name, {"seed": seed, "learning_rate": lr, "epochs": self.epochs, "data_path": self.data_path,
                      "state": "WARNING", "show_progress": False, **metric, **self.extra, **settings}

    def merged_config(self, label, seed, lr):
        """RecBole's merged config of the run of (label, seed, rate)."""
        from recbole_llm4msr.config import MultiScenarioConfig

        name, config_dict = self.run_config(label, seed, lr)
        with hidden_command_line():
            return MultiScenarioConfig(model=name, dataset=self.dataset, config_file_list=self.config_files,
                                       config_dict=config_dict)

    def config_hash(self, label, seed, lr):
        """Digest of the run's full effective config (RecBole's merged config, paths left out) and of the
        dataset's split files."""
        return self.config_hashes(label, seed, lr)[0]

    def config_hashes(self, label, seed, lr):
        """(the digest new rows get, then the digests of the same config with any of the settings the run does not
        depend on written out): a row hashed while such a setting (:data:`NEUTRAL_SETTINGS`, or the knowledge store
        of a model that reads none) was part of the digest also counts. ``knowledge_norm: auto`` is hashed as what it
        resolves to (:func:`~recbole_llm4msr.prepare.auto_norm_choice`), so a row run under ``auto`` and one that
        named the same normalisation count for each other; while the store it is chosen on is not built, as
        ``auto`` (the label is then in ``self.unresolved``; :meth:`run` builds the store first)."""
        key = (label, seed, float(lr))
        if key not in self._hashes:
            from recbole_llm4msr.knowledge.fingerprint import file_digest
            from recbole_llm4msr.prepare import knowledge_kinds
            from recbole_llm4msr.results import json_safe_config

            config = self.merged_config(label, seed, lr)
            kinds = knowledge_kinds(config)
            raw = {k: v for k, v in json_safe_config(config).items() if k not in VOLATILE}
            folder = os.path.join(self.data_path, self.dataset)
            data = {f: file_digest(os.path.join(folder, f)) for f in sorted(os.listdir(folder))
                    if f.endswith(".inter") or f.endswith(".user") or f.endswith(".item")}

            def digest(effective):
                payload = json.dumps({"config": effective, "data": data}, sort_keys=True, default=str)
                return hashlib.sha256(payload.encode()).hexdigest()[:12]

            effective = resolve_knowledge_defaults(config, dict(raw))
            if str(effective.get("knowledge_norm", "")).lower() == "auto" and "user" in kinds:
                effective["knowledge_norm"] = self._auto_norm(label, config) or "auto"
            # what a run does not depend on: settings at their neutral value, and a knowledge store or normalisation
            # given to a model that reads no knowledge (a plain backbone, DN, EP, a stock model: e.g. one --set for
            # every label of a comparison); rows that wrote any of them out count as well
            droppable = [k for k, v in NEUTRAL_SETTINGS.items() if k in raw and raw[k] == v]
            if not kinds:
                for setting in KNOWLEDGE_SETTINGS:
                    if raw.get(setting):
                        effective.pop(setting, None)
                        droppable.append(setting)
            hashes = tuple(digest(dict(effective, **{k: raw[k] for k in kept}))
                           for n in range(len(droppable) + 1) for kept in itertools.combinations(droppable, n))
            if label in self.unresolved:
                return hashes  # hashed with 'auto': not kept, the store may be built by the next run
            self._hashes[key] = hashes
        return self._hashes[key]

    def _auto_norm(self, label, config):
        """The concrete normalisation ``knowledge_norm: auto`` picks for the label's store (the same for every seed and
        rate: looked up once), or None while that store is not built (or cannot be planned here, e.g. an LLM not
        installed: run() reports why); such a label is kept in ``self.unresolved``."""
        from recbole_llm4msr.prepare import auto_norm_choice

        if self._auto_choice.get(label) is None:
            try:
                self._auto_choice[label] = auto_norm_choice(config)
            except Exception:  # noqa: BLE001
                self._auto_choice[label] = None
        chosen = self._auto_choice[label]
        if chosen is None:
            self.unresolved.add(label)
        else:
            self.unresolved.discard(label)
        return chosen

    @staticmethod
    def _finished(row, seed, lr):
        return row["seed"] == str(seed) and float(row["learning_rate"]) == float(lr) and row["status"] == "ok"

    def done(self, label, seed, lr):
        """The finished row of (label, seed, rate) whose config hash matches the current config, or None."""
        for r in self.rows:
            if r["model"] == label and self._finished(r, seed, lr) \
                    and r.get("config_hash") in self.config_hashes(label, seed, lr):
                return r
        return None

    def twin(self, label, seed, lr):
        """A finished row of *another* label whose run was this one: the same seed and rate and a config hash of
        this label's config (e.g. ``MMoE_LLM4MSR[knowledge_store=S]`` and ``MMoE_LLM4MSR`` run with ``--set
        knowledge_store=S``; the hash covers the model and every effective setting), or None."""
        try:
            hashes = self.config_hashes(label, seed, lr)
        except Exception:  # noqa: BLE001  (a config that cannot be built: the run records why, as for any crash)
            return None
        for r in self.rows:
            if r["model"] != label and self._finished(r, seed, lr) and r.get("config_hash") in hashes:
                return r
        return None

    def result_name(self, label, seed, lr, config_hash):
        """The file name (in ``<out>/runs/``) this config's run of (label, seed, rate) writes: :func:`run_file_name`,
        unless that file belongs to a finished run of *another* config of the label (the same label run with another
        ``--set`` into the same ``--out``) -- then ``<name>-config<hash>.json``, so that neither overwrites the other.
        A row records its file in ``result_file``; a row written before that column owned the plain name."""
        name = run_file_name(label, lr, seed)
        if not os.path.isfile(os.path.join(self.out, "runs", name)):
            return name
        owners = [r for r in self.rows if r["model"] == label and self._finished(r, seed, lr)
                  and r.get("result_file", "") in ("", name)]
        if not owners or owners[-1].get("config_hash") in self.config_hashes(label, seed, lr):
            return name
        return f"{name[:-len('.json')]}-config{config_hash}.json"

    def uses_gpu(self, config):
        """Whether a run of ``config`` (a run's config_dict) asks for the GPU: its ``use_gpu``, else the config files'
        (last one wins), else RecBole's default (True). Whether a GPU is there is :func:`machine`'s business."""
        if "use_gpu" in config:
            return bool(config["use_gpu"])
        from recbole_llm4msr.settings import merge_yaml_files

        return bool(merge_yaml_files([], self.config_files or ()).get("use_gpu", True))

    def run_one(self, label, seed, lr, phase):
        from recbole_llm4msr.quick_start import run_recbole

        found = self.done(label, seed, lr)
        if found:
            return found
        twin = self.twin(label, seed, lr)
        if twin:  # the same run under another label: its result, not a second training (the harness is deterministic)
            row = dict(twin, model=label, phase=phase, reused_from=twin["model"])
            source = os.path.join(self.out, "runs", twin.get("result_file") or run_file_name(twin["model"], lr, seed))
            if os.path.isfile(source):
                row["result_file"] = self.result_name(label, seed, lr, twin["config_hash"])
                shutil.copy2(source, os.path.join(self.out, "runs", row["result_file"]))
            self._record(row)
            return row  # every value a string already (a recorded row's)
        work = tempfile.mkdtemp(prefix="llm4msr-compare-")
        row = {"model": label, "phase": phase, "seed": seed, "learning_rate": lr}
        cwd = os.getcwd()
        try:
            row["config_hash"] = self.config_hash(label, seed, lr)
            row["result_file"] = self.result_name(label, seed, lr, row["config_hash"])
            name, config = self.run_config(label, seed, lr)
            row["machine"], where = machine(gpu=self.uses_gpu(config))
            record_machines(self.out, {row["machine"]: where})
            config.update(checkpoint_dir=os.path.join(work, "saved"),
                          results_file=os.path.join(self.out, "runs", row["result_file"]))
            os.chdir(work)
            with hidden_command_line():
                result = run_recbole(model=name, dataset=self.dataset, config_dict=config,
                                     config_file_list=self.config_files)
            row.update(status="ok", train_s_per_epoch=round(result.get("train_seconds_per_epoch", 0), 3),
                       test_ms_per_1000=round(result.get("test_ms_per_1000", 0), 3), params=result["num_parameters"],
                       epochs=result.get("epochs_trained"))
            payload = result.get("results")
            if payload is not None:  # a CTR run: overall and per-scenario AUC / logloss
                row.update(valid_auc=payload["best_valid"]["auc"], valid_logloss=payload["best_valid"]["logloss"],
                           test_auc=payload["test"]["auc"], test_logloss=payload["test"]["logloss"])
                for part in ("best_valid", "test"):
                    for scen, m in payload[part]["scenarios"].items():
                        for metric in ("auc", "logloss"):
                            row[f"{'valid' if part == 'best_valid' else 'test'}_{metric}_{scen}"] = m[metric]
            else:  # any other run: RecBole's result keys (recall@10, ndcg@10, ...)
                for key, value in result["best_valid_result"].items():
                    row[f"valid_{key}"] = value
                for key, value in result["test_result"].items():
                    row[f"test_{key}"] = value
            if row.get(f"valid_{self.metric}") in (None, ""):
                raise ValueError(f"the run reported no '{self.metric}' (its metrics: "
                                 f"{sorted(k[6:] for k in row if k.startswith('valid_'))}); choose --metric among them")
        except Exception as e:  # noqa: BLE001  (a crash in one run is recorded; the comparison goes on)
            row.update(status="error", error=f"{type(e).__name__}: {e}"[:300])
            traceback.print_exc()
        finally:
            os.chdir(cwd)
            shutil.rmtree(work, ignore_errors=True)  # checkpoints and logs of the run (its results JSON is kept)
        self._record(row)
        return {k: "" if v is None else str(v) for k, v in row.items()}

    @property
    def search(self):
        """The rates tried on the lr seed: the grid, or none when one rate is given (nothing to choose)."""
        return self.lr_grid if len(self.lr_grid) > 1 else []

    def best_lr(self, label):
        if not self.search:
            return self.lr_grid[0]
        scores = {}
        for lr in self.lr_grid:
            r = self.done(label, self.lr_seed, lr)
            if r and r.get(f"valid_{self.metric}") not in (None, ""):
                scores[lr] = float(r[f"valid_{self.metric}"])
        if not scores:
            return None
        return (min if self.metric == "logloss" else max)(scores, key=scores.get)

    def ensure_knowledge(self, label):
        """Build the knowledge store a label under ``knowledge_norm: auto`` chooses on (what its first run would do),
        so that its runs are looked for under the concrete normalisation, not ``auto``. A failure is logged and left
        to the runs, which record it as any crash."""
        lr = self.search[0] if self.search else self.lr_grid[0]
        try:
            self.config_hashes(label, self.lr_seed, lr)
            if label not in self.unresolved:
                return
            from recbole_llm4msr.prepare import prepare

            tqdm.write(f"{label}: building its knowledge store first (knowledge_norm: auto chooses on it)")
            prepare(self.merged_config(label, self.lr_seed, lr))
            self.config_hashes(label, self.lr_seed, lr)
        except Exception:  # noqa: BLE001
            traceback.print_exc()

    def run(self):
        for label in self.models:
            self.ensure_knowledge(label)
        total = len(self.models) * (len(self.search) + len(self.seeds))
        bar = tqdm(total=total, desc=f"compare {self.dataset}", unit="run")
        for label in self.models:
            for lr in self.search:
                r = self.run_one(label, self.lr_seed, lr, "lr-search")
                bar.update(1)
                tqdm.write(f"{label} lr={lr} seed={self.lr_seed}: {r['status']} valid {self.metric} "
                           f"{r.get(f'valid_{self.metric}')}")
            lr = self.best_lr(label)
            for seed in self.seeds:
                if lr is not None:
                    r = self.run_one(label, seed, lr, "seeds")
                    tqdm.write(f"{label} lr={lr} seed={seed}: {r['status']} test {self.metric} "
                               f"{r.get(f'test_{self.metric}')}")
                bar.update(1)
        bar.close()
        return self.report()

    # ------------------------------------------------------------------ reporting
    def final_runs(self, label):
        """The runs at the chosen learning rate, one per reported seed (in seed order)."""
        lr = self.best_lr(label)
        if lr is None:
            return []
        return [r for r in (self.done(label, s, lr) for s in self.seeds) if r]

    def scenarios(self):
        keys = {k for r in self.rows for k in r if k.startswith("test_auc_") and r.get(k) not in (None, "")}
        return sorted(k[len("test_auc_"):] for k in keys)

    def columns(self):
        """(columns of runs.csv shown, their headers, the headline column the controls are tested on)."""
        if not self.ranking:
            scen = self.scenarios()
            return [f"test_auc_{s}" for s in scen] + ["test_auc"], scen + ["overall"], "test_auc"
        keys = [f for f in self.fields if f.startswith("test_") and "@" in f
                and any(r.get(f) not in (None, "") for r in self.rows)]
        head = f"test_{self.metric}"
        keys = [head] + [k for k in keys if k != head]
        return keys, [k[len("test_"):] for k in keys], head

    def order(self):
        stock = [m for m in self.models if family(m)[1] == "plain" and not _is_backbone(parse_label(m)[0])]
        return stock + [m for m in self.models if m not in stock]

    def tests(self, columns):
        """Every paired test of the table, with raw and corrected p-values and marks (also -> tests.csv)."""
        rows = []
        for label in self.models:
            runs = self.final_runs(label)
            for base, relation in baselines(label, self.models):
                base_runs = self.final_runs(base)
                for col in columns:
                    vals = _values(runs, col)
                    base_vals = _values(base_runs, col)
                    if not vals or len(vals) != len(base_vals):
                        continue
                    rel, t, p = paired_test(vals, base_vals)
                    rows.append({"model": label, "baseline": base, "relation": relation, "column": col,
                                 "n": len(vals), "mean": statistics.mean(vals),
                                 "baseline_mean": statistics.mean(base_vals), "rel_pct": rel, "t": t, "p_raw": p,
                                 "test": TEST_NAME, "correction": CORRECTION})
        testable = [r for r in rows if r["p_raw"] is not None]
        for r, q in zip(testable, corrected([r["p_raw"] for r in testable])):
            r["p_corrected"] = q
        for r in rows:
            r.setdefault("p_corrected", None)
            r["mark_raw"], r["mark_corrected"] = mark(r["rel_pct"], r["p_raw"], r["p_corrected"])

        atomic_write_csv(os.path.join(self.out, "tests.csv"),
                         ({k: ("" if v is None else v) for k, v in r.items()} for r in rows), TEST_FIELDS)
        return rows

    def report(self):
        columns, headers, head = self.columns()
        tests = self.tests(columns)
        by_key = {(r["model"], r["baseline"], r["column"]): r for r in tests}
        n_tests = sum(r["p_raw"] is not None for r in tests)
        name = "AUC" if not self.ranking else self.metric.upper()
        chosen = (f"at the learning rate chosen on validation {name} with seed {self.lr_seed} (not reported; grid "
                  f"{self.lr_grid}, `†` = best rate at the grid's edge)" if self.search else
                  f"at the one learning rate given ({self.lr_grid[0]}; no search)")
        lines = [
            f"Test {'AUC' if not self.ranking else 'ranking metrics (full ranking)'} on {self.dataset}: mean ± std "
            f"over the reported seeds {self.seeds}, {chosen}. (±x%) = relative "
            f"change of the mean against the plain backbone. ▲ / ▼ = better / worse by a {TEST_NAME} at raw p < "
            f"{ALPHA}; ▲▲ / ▼▼ = still significant after {CORRECTION} correction over all {n_tests} tests of this "
            f"table (tests.csv). 'vs control' = {'overall AUC' if not self.ranking else name} against the same model "
            f"with shuffled (`[shuffle]`) or zeroed (`[zero]`) knowledge; `vs NAME` = a variant with its own settings "
            f"against the default variant NAME.", "",
            "| model | lr | " + " | ".join(headers) + " | vs control | s/epoch | params |",
            "|---" * (len(headers) + 5) + "|"]
        for label in self.order():
            runs = self.final_runs(label)
            if not runs:
                failed = [r for r in self.rows if r["model"] == label and r["status"] == "error"]
                why = "not run yet"
                if label in self.unresolved:
                    why += (" (knowledge_norm: auto, and the knowledge store it is chosen on is not built here, so no "
                            "row can be matched to it: run the comparison, which builds it, or name the "
                            "normalisation, e.g. --set knowledge_norm=none)")
                lines.append(f"| {label} | " + (f"failed: {failed[-1]['error']}" if failed else why) + " |")
                continue
            backbone, kind = family(label)
            cells = []
            for col in columns:
                vals = _values(runs, col)
                if not vals:
                    cells.append("n/a")
                    continue
                cell = mean_std(vals)
                t = by_key.get((label, backbone, col)) if kind != "plain" else None
                if t is not None:
                    cell += f" ({t['rel_pct']:+.2f}%)" + (f" {t['mark_corrected'] or t['mark_raw']}"
                                                         if t["mark_raw"] else "")
                cells.append(cell)
            controls = [by_key[(label, b, head)] for b, rel in baselines(label, self.models)
                        if rel != "vs plain backbone" and (label, b, head) in by_key]
            vs = "; ".join(f"{control_name(t['baseline'])} {t['rel_pct']:+.2f}%"
                           + (f" {t['mark_corrected'] or t['mark_raw']}" if t["mark_raw"] else "") for t in controls)
            lr = float(runs[0]["learning_rate"])
            edge = "†" if len(self.lr_grid) > 1 and lr in (min(self.lr_grid), max(self.lr_grid)) else ""
            speed = statistics.mean(float(r["train_s_per_epoch"]) for r in runs)
            lines.append(f"| {label} | {runs[0]['learning_rate']}{edge} | " + " | ".join(cells) + f" | {vs or '–'} | "
                         f"{speed:.2f} | {runs[0]['params']} |")
        table = "\n".join(lines) + "\n" + self.machines_note()
        atomic_write_text(os.path.join(self.out, "table.md"), table)
        self.plot(self.order(), columns, headers)
        others = sorted({r["model"] for r in self.rows if r["status"] == "ok"} - set(self.models))
        if others:  # e.g. one process per label into one folder: each report shows its own labels only
            getLogger().warning(
                f"{self.out}: table.md, tests.csv and the plot show the {len(self.models)} label(s) of --models only; "
                f"runs.csv also holds finished runs of {len(others)} other label(s) ({', '.join(others[:3])}"
                f"{', ...' if len(others) > 3 else ''}): for the folder's whole table run --report_only with every label")
        return table

    def machines_note(self):
        """A line under the table: how many machines the reported runs ran on (none when no row records one)."""
        runs = [r for label in self.order() for r in self.final_runs(label)]
        where = Counter(r.get("machine", "") for r in runs)
        if not any(where):
            return ""
        known = sorted(m for m in where if m)
        note = (f"\nThe reported runs ran on {len(known)} machine(s) (`machines.json`: "
                + ", ".join(f"{m} {where[m]} run(s)" for m in known) + ")")
        if where.get(""):
            note += f"; {where['']} ran before machines were recorded"
        return note + (". Runs of one config on different machines can differ by a few thousandths of AUC.\n"
                       if len(known) + bool(where.get("")) > 1 else ".\n")

    def plot(self, order, cols, headers):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        models = [m for m in order if self.final_runs(m)]
        if not models:
            return None
        fig, axes = plt.subplots(1, len(cols), figsize=(4 * len(cols), 0.35 * len(models) + 2), sharey=True)
        axes = axes if hasattr(axes, "__len__") else [axes]
        colors = {"plain": "tab:gray", "dn": "tab:blue", "ep": "tab:orange", "llm4msr": "tab:red", "tslrec": "tab:green"}
        for ax, col, header in zip(axes, cols, headers):
            for i, m in enumerate(models):
                vals = _values(self.final_runs(m), col)
                if not vals:
                    continue
                kind = family(m)[1]
                err = statistics.stdev(vals) if len(vals) > 1 else 0.0
                ax.errorbar(statistics.mean(vals), i, xerr=err, fmt="o" if "[" not in kind else "x",
                            color=colors.get(kind.split("[")[0], "tab:purple"), alpha=0.5 if "[" in kind else 1.0,
                            capsize=3)
            ax.set_title(header)
            ax.set_xlabel("test AUC" if not self.ranking else f"test {header}")
            ax.grid(axis="x", alpha=0.3)
        axes[0].set_yticks(range(len(models)), models)
        axes[0].invert_yaxis()
        what = "per-scenario test AUC" if not self.ranking else "test ranking metrics"
        fig.suptitle(f"{self.dataset}: {what} (mean ± std over {len(self.seeds)} seeds; x = control)")
        fig.tight_layout()
        path = os.path.join(self.out, "auc.png" if not self.ranking else f"{_slug(self.metric.replace('@', ''))}.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return path


def _values(runs, col):
    return [float(r[col]) for r in runs if r.get(col) not in (None, "")]


def _slug(label):
    return re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("_")


def run_file_name(label, lr, seed):
    """The result JSON of one run in ``<out>/runs/``."""
    return f"{_slug(label)}-lr{float(lr)}-seed{int(seed)}.json"


def _is_backbone(model):
    from recbole_llm4msr.model.backbones import BACKBONES

    return model in {b.__name__ for b in BACKBONES}


def parse_setting(text):
    """``"key=value"`` -> ``(key, value read as YAML)``: how ``--set`` and a label's brackets read a setting."""
    import yaml

    key, _, value = text.partition("=")
    return key.strip(), yaml.safe_load(value.strip())


def main(argv=None):
    p = argparse.ArgumentParser(prog="llm4msr-compare", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True)
    p.add_argument("--models", required=True, help="comma-separated labels: NAME or NAME[shuffle|zero|key=value;...]")
    p.add_argument("--seeds", type=int, default=3, help="number of reported seeds (first_seed, first_seed + 1, ...)")
    p.add_argument("--first_seed", type=int, default=2020)
    p.add_argument("--lr_seed", type=int, default=None, help="the seed of the learning-rate search (default "
                                                             "first_seed - 1; never a reported seed)")
    p.add_argument("--lr_grid", default=",".join(map(str, DEFAULT_LR_GRID)), help="comma-separated learning rates")
    p.add_argument("--epochs", type=int, default=30, help="at most; early stopping on the validation metric")
    p.add_argument("--metric", default="auc", help="auc (CTR) or a ranking metric such as ndcg@10 (sequential / "
                                                   "general models): early stopping, lr search, headline and tests")
    p.add_argument("--out", default=None, help="default compare/<dataset>")
    p.add_argument("--data_path", default="dataset/")
    p.add_argument("--config_files", default="", help="comma-separated YAML files for every run")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any RecBole / model setting")
    p.add_argument("--report_only", action="store_true", help="write table.md / tests.csv / auc.png from the runs "
                                                              "finished so far; run nothing")
    p.add_argument("--merge", default="", help="comma-separated comparison folders whose runs of the --models labels "
                                               "are taken into --out (labels run by parallel processes; other labels' "
                                               "runs are left out and named); then report, run nothing")
    args = p.parse_args(argv)
    extra = dict(parse_setting(item) for item in args.set)
    try:
        comparison = Comparison(
            args.dataset, split_models(args.models), args.seeds, [float(x) for x in args.lr_grid.split(",")],
            args.out or os.path.join("compare", args.dataset), epochs=args.epochs, data_path=args.data_path,
            extra=extra, config_files=[f for f in args.config_files.split(",") if f] or None,
            first_seed=args.first_seed, lr_seed=args.lr_seed, metric=args.metric)
    except ValueError as e:
        print(f"llm4msr-compare: error: {e}", file=sys.stderr)
        return 2
    if args.merge:
        try:
            taken = comparison.merge([f for f in args.merge.split(",") if f])
        except ValueError as e:
            print(f"llm4msr-compare: error: {e}", file=sys.stderr)
            return 2
        print(f"{taken} run(s) merged into {comparison.out}", file=sys.stderr)
        if comparison.merge_left_out:
            print("left out (labels not in --models): " + ", ".join(
                f"{label} ({n} run(s))" for label, n in sorted(comparison.merge_left_out.items())), file=sys.stderr)
        if comparison.merge_other_configs:
            print("rows of other configs kept in runs.csv without their result files: " + ", ".join(
                f"{label} ({n} run(s))" for label, n in sorted(comparison.merge_other_configs.items())),
                file=sys.stderr)
    print(comparison.report() if args.report_only or args.merge else comparison.run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
