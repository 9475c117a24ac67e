"""MultiScenarioDataset: RecBole's Dataset plus a scenario field, checked, named and described.

``SCENARIO_FIELD`` (default ``scenario``) names a ``token`` field of the interaction file. Internally RecBole maps
its values to ids ``1..n`` (``0`` is padding); :attr:`scenario_names` lists the raw values in id order, so the
scenario with internal id ``k`` is ``scenario_names[k - 1]``.

The scenario field stays an ordinary feature as well: stock CTR models (DeepFM, ...) embed it like any other token
field, which is how multi-scenario baselines are usually run. Leave it out of ``load_col`` only if you also point
``SCENARIO_FIELD`` elsewhere -- the field is required.
"""
import os

import numpy as np
import pandas as pd
import torch
from recbole.data.dataset import Dataset
from recbole.utils import FeatureSource, FeatureType

from dataset_converters.writer import scenario_stats


class ScenarioDataError(ValueError):
    """A multi-scenario dataset is unusable; the message names the file, the field and what to do."""


class MultiScenarioDataset(Dataset):
    def __init__(self, config):
        self.scenario_field = config["SCENARIO_FIELD"] or "scenario"
        super().__init__(config)

    # ---------------------------------------------------------------- loading and checks
    def _inter_files(self):
        token, path = self.dataset_name, self.dataset_path
        if self.benchmark_filename_list:
            return [os.path.join(path, f"{token}.{part}.inter") for part in self.benchmark_filename_list]
        return [os.path.join(path, f"{token}.inter")]

    def _load_data(self, token, dataset_path):
        if not os.path.isdir(dataset_path):
            # RecBole would try to download an unknown dataset here; we have no network and no such URL.
            raise FileNotFoundError(
                f"dataset '{token}': folder {dataset_path} does not exist. Convert your data into it "
                f"(python -m dataset_converters <name> ... --out {os.path.dirname(os.path.normpath(dataset_path))}) "
                f"or set --data_path to the folder that holds '{token}/'."
            )
        for file in self._inter_files():
            if not os.path.isfile(file):
                raise FileNotFoundError(
                    f"dataset '{token}': {file} is missing. The converters write NAME.train/valid/test.inter; "
                    f"for a dataset without a fixed split set 'benchmark_filename: ~' to use NAME.inter."
                )
        super()._load_data(token, dataset_path)
        self._check_core_fields()
        self._check_scenario_field()
        self._check_labels()

    # Every check below runs on the raw loaded frames, before RecBole fills missing values (it would fill an empty
    # label with the column mean and an empty id with a token of its own: silently wrong data).
    def _load_feat(self, filepath, source):
        columns = self._check_header(filepath, source)
        try:
            return super()._load_feat(filepath, source)
        except UnicodeDecodeError as e:
            raise ScenarioDataError(
                f"{filepath}: not valid {self.config['encoding'] or 'utf-8'} text ({e}); re-encode the file as UTF-8 or set "
                f"'encoding' to the file's encoding (e.g. --encoding=latin-1)") from None
        except ValueError as e:  # pandas: a float column holds text
            floats = [f for f, t in columns.items() if t in ("float", "float_seq")]
            raise ScenarioDataError(f"{filepath}: a value does not match its column type ({e}); float columns "
                                    f"{floats} must hold numbers only (or change the header type to ':token')") from None

    def _check_header(self, filepath, source):
        """The header of an atomic file: ``name:type`` fields, known types, no duplicates, every loaded column."""
        sep, encoding = self.config["field_separator"], self.config["encoding"] or "utf-8"
        try:
            with open(filepath, "r", encoding=encoding) as f:
                head = f.readline().rstrip("\r\n")
        except UnicodeDecodeError as e:
            raise ScenarioDataError(f"{filepath}: not valid {encoding} text ({e}); re-encode the file as UTF-8 or "
                                    f"set 'encoding' to the file's encoding (e.g. --encoding=latin-1)") from None
        types = [t.value for t in FeatureType]
        columns = {}
        for field_type in head.split(sep):
            parts = field_type.split(":")
            if len(parts) != 2 or parts[1] not in types:
                raise ScenarioDataError(f"{filepath}: header field '{field_type}' must be 'name:type' with type one "
                                        f"of {types} (fields are separated by {sep!r})")
            if parts[0] in columns:
                raise ScenarioDataError(f"{filepath}: column '{parts[0]}' appears twice in the header; rename or "
                                        f"drop one")
            columns[parts[0]] = parts[1]
        load_col, _ = self._get_load_and_unload_col(source)
        if load_col:
            missing = sorted(set(load_col) - set(columns))
            if missing:
                raise ScenarioDataError(f"{filepath}: column(s) {missing} listed in load_col are not in the header "
                                        f"{list(columns)}; fix the spelling in the file or in load_col")
            ignored = sorted(set(columns) - set(load_col))
            if ignored:
                self.logger.info(f"{os.path.basename(filepath)}: columns {ignored} are not in load_col: not loaded")
        return columns

    def _check_core_fields(self):
        files = ", ".join(self._inter_files())
        inter = self.inter_feat
        for key, field, kind in (("USER_ID_FIELD", self.uid_field, "token"), ("ITEM_ID_FIELD", self.iid_field, "token"),
                                 ("LABEL_FIELD", self.label_field, "float")):
            if field is None or field not in inter:
                raise ScenarioDataError(f"{key} '{field}' is not a loaded column of {files}; add a '{field}:{kind}' "
                                        f"column (and list it in load_col.inter) or set {key} to the right column")
            if self.field2type[field].value != kind:
                raise ScenarioDataError(f"{key} '{field}' in {files} is typed '{self.field2type[field].value}', "
                                        f"it must be '{kind}': change the header to '{field}:{kind}'")
            empty = _empty_values(inter[field], token=kind == "token")
            if empty.any():
                rows = (np.flatnonzero(empty.to_numpy())[:5] + 1).tolist()
                raise ScenarioDataError(f"{key} '{field}' is empty or NaN in {int(empty.sum())} row(s) of {files} "
                                        f"(data rows {rows} ..., counted over the files in order); fix or drop them")

    def _check_labels(self):
        if self.config["threshold"]:
            return  # RecBole turns the field into 0/1 itself
        labels = self.inter_feat[self.label_field]
        bad = ~labels.isin([0, 1])
        if bad.any():
            values = sorted(set(labels[bad].tolist()))[:5]
            raise ScenarioDataError(f"LABEL_FIELD '{self.label_field}' must be 0 or 1 (click / no click), found "
                                    f"{values} in {int(bad.sum())} row(s) of {', '.join(self._inter_files())}; "
                                    f"binarise it, or set threshold: {{{self.label_field}: X}} (label = value >= X)")
        scen = self.inter_feat[self.scenario_field].astype(str)
        positives = labels.groupby(scen).sum()
        for name, count in positives.items():
            if count == 0:
                self.logger.warning(f"scenario '{name}' has no positive label in {', '.join(self._inter_files())}: "
                                    f"the model cannot learn it and its AUC is undefined (reported as n/a)")

    def _check_scenario_field(self):
        field, files = self.scenario_field, ", ".join(self._inter_files())
        if field not in self.field2type:
            columns = [f for f, s in self.field2source.items() if s == FeatureSource.INTERACTION]
            raise ScenarioDataError(
                f"SCENARIO_FIELD '{field}' is not a loaded column of {files} (loaded columns: {columns}). "
                f"Add a '{field}:token' column to the file, list it under load_col.inter, or set "
                f"SCENARIO_FIELD to the column that holds the scenario."
            )
        if self.field2source[field] != FeatureSource.INTERACTION:
            raise ScenarioDataError(
                f"SCENARIO_FIELD '{field}' comes from the {self.field2source[field].value} file, not from {files}; "
                f"the scenario belongs to each interaction: put a '{field}:token' column in the .inter file(s)."
            )
        if self.field2type[field] != FeatureType.TOKEN:
            raise ScenarioDataError(
                f"SCENARIO_FIELD '{field}' in {files} is typed '{self.field2type[field].value}', but a scenario must be "
                f"a 'token' field: change the header to '{field}:token'."
            )
        empty = int(_empty_values(self.inter_feat[field], token=True).sum())
        if empty:
            raise ScenarioDataError(
                f"SCENARIO_FIELD '{field}' is empty in {empty} row(s) of {files}; every interaction needs a scenario."
            )

    def build(self):
        datasets = super().build()
        train = datasets[0]
        seen = set(torch.unique(train.inter_feat[self.scenario_field]).tolist())
        for part, ds in zip(("valid", "test"), datasets[1:]):
            if ds is None or len(ds) == 0:
                continue
            missing = set(torch.unique(ds.inter_feat[self.scenario_field]).tolist()) - seen
            if missing:
                names = sorted(self.id2token(self.scenario_field, sorted(missing)).tolist())
                raise ScenarioDataError(
                    f"scenario(s) {names} of field '{self.scenario_field}' occur in the {part} split but not in the "
                    f"training split ({self._inter_files()[0]}); a model cannot learn a scenario it never trains on. "
                    f"Re-split the data so every scenario has training rows, or drop those rows."
                )
        return datasets

    # ---------------------------------------------------------------- scenarios
    @property
    def scenario_names(self):
        """Raw scenario values in internal-id order (id ``k`` is ``scenario_names[k - 1]``)."""
        return list(self.field2id_token[self.scenario_field][1:])

    @property
    def scenario_num(self):
        return len(self.field2id_token[self.scenario_field]) - 1

    def scenario_id(self, name):
        return int(self.token2id(self.scenario_field, str(name)))

    def scenario_statistics(self):
        """Per-scenario statistics of the interactions this dataset object holds (e.g. the training split), with
        the converters' definitions (:func:`dataset_converters.writer.scenario_stats`: sparsity = 1 - interactions /
        (users * items), None for a scenario without rows).

        Returns ``{name: {"users", "items", "interactions", "sparsity", "positives", "positive_ratio"}}`` for every
        scenario, in id order; ``positives`` / ``positive_ratio`` are None without a label field.
        """
        inter = self.inter_feat
        frame = pd.DataFrame({"s": _as_numpy(inter[self.scenario_field]), "u": _as_numpy(inter[self.uid_field]),
                              "i": _as_numpy(inter[self.iid_field])})
        has_label = self.label_field in inter
        frame["y"] = _as_numpy(inter[self.label_field]) if has_label else 0.0
        ids = list(range(1, len(self.scenario_names) + 1))
        by_id = scenario_stats(frame, "u", "i", "y", "s", names=ids)["scenarios"]
        stats = {}
        for sid, name in zip(ids, self.scenario_names):
            row = dict(by_id[str(sid)])
            if not has_label:
                row["positives"] = row["positive_ratio"] = None
            stats[name] = row
        return stats

    def __str__(self):
        lines = [super().__str__(), f"The scenario field: [{self.scenario_field}], {self.scenario_num} scenarios"]
        for name, s in self.scenario_statistics().items():
            ratio = "-" if s["positive_ratio"] is None else f"{s['positive_ratio']:.3f}"
            sparse = "-" if s["sparsity"] is None else f"{s['sparsity']:.4f}"
            lines.append(
                f"    {name}: {s['interactions']} interactions, {s['users']} users, {s['items']} items, "
                f"sparsity {sparse}, positive ratio {ratio}"
            )
        return "\n".join(lines)


def _empty_values(values, token):
    """Boolean mask of missing values: NaN, and for token fields also empty / blank strings."""
    empty = values.isna()
    if token:
        empty |= values.astype(str).str.strip() == ""
    return empty


def _as_numpy(column):
    if isinstance(column, torch.Tensor):
        return column.cpu().numpy()
    return np.asarray(column)
