"""The converted dataset files the knowledge pipeline reads (the fixed training split only, never valid/test)."""
import os
from dataclasses import dataclass, field

import pandas as pd
import yaml

from dataset_converters.writer import read_atomic
from recbole_llm4msr.config import properties_dir
from recbole_llm4msr.data.builtin import ensure_builtin


@dataclass
class DatasetFiles:
    name: str
    folder: str
    config: dict = field(default_factory=dict)

    @classmethod
    def locate(cls, name, data_path="dataset/", config_files=()):
        """Find ``data_path/name`` (converting a built-in dataset on first use) and merge its YAML settings:
        ``properties/dataset/<name>.yaml`` < the converter's ``<name>.yaml`` < ``config_files``."""
        ensure_builtin(name, data_path)
        folder = os.path.join(data_path, name)
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"dataset '{name}': {folder} does not exist; convert it first "
                                    f"(python -m dataset_converters ...) or pass --data_path")
        config = {}
        for path in [properties_dir() / "dataset" / f"{name}.yaml", os.path.join(folder, f"{name}.yaml"),
                     *config_files]:
            if os.path.isfile(path):
                with open(path, encoding="utf-8") as f:
                    config.update(yaml.safe_load(f) or {})
        files = cls(name, folder, config)
        if not os.path.isfile(files.train_file):
            raise FileNotFoundError(f"dataset '{name}': {files.train_file} is missing; the knowledge pipeline reads "
                                    f"the converter's fixed training split (re-run the converter)")
        return files

    def field(self, key, default):
        return self.config.get(key) or default

    @property
    def train_file(self):
        return os.path.join(self.folder, f"{self.name}.train.inter")

    @property
    def item_file(self):
        return os.path.join(self.folder, f"{self.name}.item")

    def train_interactions(self):
        """The training split with columns user, item, label (float), scenario and timestamp (if present)."""
        df = read_atomic(self.train_file)
        cols = {"user": self.field("USER_ID_FIELD", "user_id"), "item": self.field("ITEM_ID_FIELD", "item_id"),
                "label": self.field("LABEL_FIELD", "label"), "scenario": self.field("SCENARIO_FIELD", "scenario")}
        missing = [v for v in cols.values() if v not in df.columns]
        if missing:
            raise ValueError(f"{self.train_file}: column(s) {missing} missing (columns: {list(df.columns)}); "
                             f"check USER_ID_FIELD / ITEM_ID_FIELD / LABEL_FIELD / SCENARIO_FIELD")
        out = pd.DataFrame({k: df[v] for k, v in cols.items()})
        out["label"] = pd.to_numeric(out["label"], errors="coerce")
        if out["label"].isna().any():
            raise ValueError(f"{self.train_file}: label column '{cols['label']}' has non-numeric values")
        time_field = self.field("TIME_FIELD", "timestamp")
        if time_field in df.columns:
            out["timestamp"] = pd.to_numeric(df[time_field], errors="coerce")
        return out

    def item_texts(self):
        """item token -> readable text, from the ``item_text_fields`` of the .item file (empty if none)."""
        fields = self.config.get("item_text_fields") or []
        if not fields or not os.path.isfile(self.item_file):
            return {}
        item_col = self.field("ITEM_ID_FIELD", "item_id")
        df = read_atomic(self.item_file, usecols=[item_col] + [f for f in fields if f != item_col])
        title_field, extra = fields[0], fields[1:]

        def text(row):
            title = row[title_field].strip()
            details = [", ".join(row[f].split()) for f in extra if f != title_field and row[f].strip()]
            return f"{title} ({'; '.join(details)})" if details else title

        return dict(zip(df[item_col], df.apply(text, axis=1)))
