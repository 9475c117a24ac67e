"""The converted dataset files the knowledge pipeline reads (the fixed training split only, never valid/test)."""
import os
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from dataset_converters.builtin import ensure_builtin
from dataset_converters.writer import read_atomic
from recbole_llm4msr.knowledge.spec import FIELD_DEFAULTS
from recbole_llm4msr.settings import dataset_yaml_files, merge_yaml_files


def dataset_settings(dataset, data_path, config_files=()):
    """The settings of ``data_path/dataset`` for tools that build no RecBole Config (``llm4msr-knowledge``,
    ``llm4msr-align``, benchmarks): a built-in dataset is converted first, then its YAML files and
    ``config_files`` are merged in the precedence of :mod:`recbole_llm4msr.settings`."""
    ensure_builtin(dataset, data_path)
    return merge_yaml_files(dataset_yaml_files(dataset, data_path), config_files)


@dataclass
class DatasetFiles:
    """``<data_path>/<name>/`` and the dataset settings (field names, scenario descriptions, item text fields)."""

    name: str
    folder: str
    config: dict = field(default_factory=dict)

    @classmethod
    def from_spec(cls, spec):
        """The dataset folder of a :class:`~recbole_llm4msr.knowledge.spec.KnowledgeSpec` (converted beforehand:
        ``prepare`` / ``llm4msr-knowledge`` convert built-in datasets first)."""
        folder = os.path.join(spec.data_path, spec.dataset)
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"dataset '{spec.dataset}': {folder} does not exist; convert it first "
                                    f"(python -m dataset_converters ...) or pass --data_path")
        files = cls(spec.dataset, folder, dict(spec.settings))
        if not os.path.isfile(files.train_file):
            raise FileNotFoundError(f"dataset '{spec.dataset}': {files.train_file} is missing; the knowledge pipeline "
                                    f"reads the converter's fixed training split (re-run the converter)")
        return files

    def field(self, key):
        return self.config.get(key) or FIELD_DEFAULTS[key]

    @property
    def train_file(self):
        return os.path.join(self.folder, f"{self.name}.train.inter")

    @property
    def item_file(self):
        return os.path.join(self.folder, f"{self.name}.item")

    def field_names(self):
        return {k: self.field(k) for k in FIELD_DEFAULTS}

    def positive_rule(self):
        """``(column, operator, value)``: the dataset's own rule for a positive. RecBole's ``threshold: {col: t}``
        makes ``label = col >= t``; without a threshold the label column is 0/1 and a positive is ``label > 0.5``."""
        threshold = self.config.get("threshold")
        if isinstance(threshold, dict) and threshold:
            if len(threshold) != 1:
                raise ValueError(f"dataset '{self.name}': threshold {threshold} names {len(threshold)} fields; RecBole "
                                 f"binarises one field")
            (column, value), = threshold.items()
            return str(column), ">=", float(value)
        return self.field("LABEL_FIELD"), ">", 0.5

    def train_interactions(self):
        """The training split with columns user, item, label (1.0 for a positive by the dataset's own rule,
        :meth:`positive_rule`, else 0.0), scenario and timestamp (if present)."""
        return self.split_interactions("train")

    def split_interactions(self, part):
        """``train`` or ``valid`` as :meth:`train_interactions` (the knowledge pipeline never reads ``test``)."""
        if part not in ("train", "valid"):
            raise ValueError(f"the knowledge pipeline reads the train and valid splits only, not '{part}'")
        path = os.path.join(self.folder, f"{self.name}.{part}.inter")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"dataset '{self.name}': {path} is missing (re-run the converter)")
        df = read_atomic(path)
        column, op, value = self.positive_rule()
        cols = {"user": self.field("USER_ID_FIELD"), "item": self.field("ITEM_ID_FIELD"), "label": column,
                "scenario": self.field("SCENARIO_FIELD")}
        missing = [v for v in cols.values() if v not in df.columns]
        if missing:
            raise ValueError(f"{path}: column(s) {missing} missing (columns: {list(df.columns)}); "
                             f"check USER_ID_FIELD / ITEM_ID_FIELD / LABEL_FIELD / SCENARIO_FIELD / threshold")
        out = pd.DataFrame({k: df[v] for k, v in cols.items()})
        raw = pd.to_numeric(out["label"], errors="coerce")
        if raw.isna().any():
            raise ValueError(f"{path}: label column '{column}' has non-numeric values")
        out["label"] = ((raw >= value) if op == ">=" else (raw > value)).astype(float)
        time_field = self.field("TIME_FIELD")
        if time_field in df.columns:
            out["timestamp"] = pd.to_numeric(df[time_field], errors="coerce")
        return out

    def user_attributes(self):
        """``.user`` file token columns (gender, occupation, ...) with the id as ``user``; None without a file."""
        path = os.path.join(self.folder, f"{self.name}.user")
        if not os.path.isfile(path):
            return None
        with open(path, encoding="utf-8") as f:
            header = f.readline().rstrip("\r\n").split("\t")
        uid = self.field("USER_ID_FIELD")
        tokens = [h.split(":")[0] for h in header if h.endswith(":token") and h.split(":")[0] != uid]
        df = read_atomic(path, usecols=[uid] + tokens).rename(columns={uid: "user"})
        return df.replace("", np.nan)

    def item_texts(self, max_words=None, fields=None):
        """item token -> readable text, from the ``item_text_fields`` of the .item file (empty if none):
        ``title (detail, detail, ...; other field ...)``. ``max_words``: at most that many words per item, the title's
        first and the details' with what is left (a cost cap: the LLM reads fewer tokens per item). ``fields``: these
        fields of the .item file instead of ``item_text_fields`` (the first one takes the title's place)."""
        fields = list((self.config.get("item_text_fields") or []) if fields is None else fields)
        if not fields or not os.path.isfile(self.item_file):
            return {}
        if max_words is not None and int(max_words) < 1:
            raise ValueError(f"max_words (item text cap) must be at least 1, not {max_words}")
        item_col = self.field("ITEM_ID_FIELD")
        df = read_atomic(self.item_file, usecols=[item_col] + [f for f in fields if f != item_col])
        title_field, extra = fields[0], fields[1:]

        def text(row):
            title = row[title_field].split()
            details = [row[f].split() for f in extra if f != title_field and row[f].strip()]
            if max_words is not None:
                title = title[:int(max_words)]
                left, kept = int(max_words) - len(title), []
                for words in details:
                    if left > 0:
                        kept.append(words[:left])
                        left -= len(kept[-1])
                details = kept
            title = " ".join(title)
            details = [", ".join(words) for words in details]
            return f"{title} ({'; '.join(details)})" if details else title

        return dict(zip(df[item_col], df.apply(text, axis=1)))
