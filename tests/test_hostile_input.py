"""Hostile input: broken datasets, configs and knowledge caches each end in a clear error naming the problem (or a
documented, logged handling) -- never a traceback from deep inside RecBole, never silently wrong data."""
import logging
import os
import shutil

import pytest
from recbole.data import data_preparation

from recbole_llm4msr.config import MultiScenarioConfig
from recbole_llm4msr.data.dataset import ScenarioDataError
from recbole_llm4msr.registry import create_dataset
from tests.cli_helpers import run_cli

PARTS = {"train": 1500, "valid": 300, "test": 300}


@pytest.fixture()
def tiny(data_dir, tmp_path):
    """A small valid copy of ml-100k-msr named 'tiny' (header + the first rows of each split)."""
    src, dst = os.path.join(data_dir, "ml-100k-msr"), tmp_path / "tiny"
    dst.mkdir()
    for part, n in PARTS.items():
        with open(os.path.join(src, f"ml-100k-msr.{part}.inter")) as f:
            lines = [next(f) for _ in range(n + 1)]
        (dst / f"tiny.{part}.inter").write_text("".join(lines))
    for ext in ("user", "item"):
        shutil.copy(os.path.join(src, f"ml-100k-msr.{ext}"), dst / f"tiny.{ext}")
    shutil.copy(os.path.join(src, "ml-100k-msr.yaml"), dst / "tiny.yaml")
    return tmp_path


def load(root, **config):
    cfg = MultiScenarioConfig(model="MMoE", dataset="tiny", config_dict={"data_path": str(root), **config})
    dataset = create_dataset(cfg)
    return dataset, data_preparation(cfg, dataset)


def edit(root, part, fn):
    path = root / "tiny" / f"tiny.{part}.inter"
    lines = path.read_text().splitlines()
    header, rows = lines[0].split("\t"), [r.split("\t") for r in lines[1:]]
    header, rows = fn(header, rows)
    path.write_text("\n".join("\t".join(r) for r in [header] + rows) + "\n")


def set_col(name, value, rows_idx=(0,)):
    def fn(header, rows):
        i = [h.split(":")[0] for h in header].index(name)
        for r in rows_idx:
            rows[r][i] = value
        return header, rows
    return fn


def rename(old, new):
    return lambda header, rows: ([new if h == old else h for h in header], rows)


def drop(name):
    def fn(header, rows):
        i = [h.split(":")[0] for h in header].index(name)
        return header[:i] + header[i + 1:], [r[:i] + r[i + 1:] for r in rows]
    return fn


CASES = {
    "missing label column": (lambda root: [edit(root, p, drop("label")) for p in PARTS],
                             r"label.*not in the header"),
    "misspelled scenario column": (lambda root: [edit(root, p, rename("scenario:token", "scenaro:token")) for p in PARTS],
                                   r"\['scenario'\] listed in load_col are not in the header"),
    "misspelled user column": (lambda root: edit(root, "train", rename("user_id:token", "userid:token")),
                               r"\['user_id'\] listed in load_col"),
    "header without type": (lambda root: edit(root, "train", rename("label:float", "label")),
                            r"header field 'label' must be 'name:type'"),
    "unknown type": (lambda root: edit(root, "train", rename("label:float", "label:bool")),
                     r"header field 'label:bool'"),
    "label typed token": (lambda root: [edit(root, p, rename("label:float", "label:token")) for p in PARTS],
                          r"LABEL_FIELD 'label' .* typed 'token'"),
    "scenario typed float": (lambda root: [edit(root, p, rename("scenario:token", "scenario:float")) for p in PARTS],
                             r"typed 'float'.*scenario:token|column type"),
    "duplicate header field": (lambda root: edit(root, "train", lambda h, r: (h + [h[0]], [x + [x[0]] for x in r])),
                               r"'user_id' appears twice"),
    "text in a float column": (lambda root: edit(root, "train", set_col("label", "yes")),
                               r"does not match its column type.*\['label'"),
    "empty user id": (lambda root: edit(root, "train", set_col("user_id", "", (3, 7))),
                      r"USER_ID_FIELD 'user_id' is empty or NaN in 2 row"),
    "empty item id": (lambda root: edit(root, "valid", set_col("item_id", " ")),
                      r"ITEM_ID_FIELD 'item_id' is empty"),
    "empty label": (lambda root: edit(root, "train", set_col("label", "")),
                    r"LABEL_FIELD 'label' is empty or NaN"),
    "NaN label": (lambda root: edit(root, "test", set_col("label", "nan")),
                  r"LABEL_FIELD 'label' is empty or NaN"),
    "label outside 0/1": (lambda root: edit(root, "train", set_col("label", "5", (0, 1))),
                          r"must be 0 or 1.*\[5\.0\] in 2 row"),
    "negative label": (lambda root: edit(root, "valid", set_col("label", "-1")),
                       r"must be 0 or 1.*-1"),
    "empty scenario": (lambda root: edit(root, "train", set_col("scenario", "")),
                       r"SCENARIO_FIELD 'scenario' is empty"),
    "scenario only in test": (lambda root: edit(root, "test", set_col("scenario", "martian")),
                              r"\['martian'\].*test split but not in the training split"),
    "non-UTF-8 bytes": (lambda root: (root / "tiny" / "tiny.train.inter").write_bytes(
                            (root / "tiny" / "tiny.train.inter").read_bytes().replace(b"senior", b"s\xe9nior", 1)),
                        r"tiny.train.inter: not valid utf-8.*encoding"),
    "missing split file": (lambda root: os.remove(root / "tiny" / "tiny.valid.inter"),
                           r"tiny.valid.inter is missing"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_broken_dataset_is_a_clear_error(case, tiny, workdir):
    load(tiny)  # the untouched copy is fine
    breaker, message = CASES[case]
    breaker(tiny)
    with pytest.raises((ScenarioDataError, FileNotFoundError), match=message):
        load(tiny)


def test_extra_columns_are_logged_and_not_loaded(tiny, workdir, caplog):
    edit(tiny, "train", lambda h, r: (h + ["comment:token"], [x + ["hello"] for x in r]))
    for part in ("valid", "test"):
        edit(tiny, part, lambda h, r: (h + ["comment:token"], [x + ["hi"] for x in r]))
    with caplog.at_level(logging.INFO):
        dataset, _ = load(tiny)
    assert "comment" not in dataset.field2type
    notes = [r.getMessage() for r in caplog.records if "inter: columns" in r.getMessage()]
    assert notes and all("'comment'" in n for n in notes)


def test_scenario_without_positives_is_logged_and_its_auc_left_out(tiny, workdir, caplog):
    def no_positives_in_senior(header, rows):
        names = [h.split(":")[0] for h in header]
        s, y = names.index("scenario"), names.index("label")
        for r in rows:
            if r[s] == "senior":
                r[y] = "0.0"
        return header, rows

    for part in PARTS:
        edit(tiny, part, no_positives_in_senior)
    with caplog.at_level(logging.WARNING):
        load(tiny)
    assert "scenario 'senior' has no positive label" in caplog.text


def test_cli_reports_broken_data_without_a_traceback(tiny, workdir):
    edit(tiny, "train", set_col("label", "7"))
    proc = run_cli("recbole_llm4msr.cli", "--model=MMoE", "--dataset=tiny", f"--data_path={tiny}", "--epochs=1",
                   cwd=workdir, check=False)
    assert proc.returncode == 1
    assert "run_recbole: error:" in proc.stderr and "must be 0 or 1" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_stops_a_misspelt_setting_before_it_runs(tiny, workdir):
    """RecBole takes any --key=value silently (the run would use the default): run_recbole names the key and the
    nearest known ones, before any data is read or any file written."""
    proc = run_cli("recbole_llm4msr.cli", "--model=MMoE_LLM4MSR", "--dataset=tiny", f"--data_path={tiny}",
                   "--knowledge_nrom=whiten", "--epochs=1", cwd=workdir, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "run_recbole: error: --knowledge_nrom: unknown setting 'knowledge_nrom' (did you mean knowledge_norm" \
        in proc.stderr and "--config_files" in proc.stderr
    assert not os.path.exists(os.path.join(workdir, "saved")) and not os.path.exists(os.path.join(workdir, "log"))


def test_every_setting_a_model_reads_is_checked_before_any_data(tiny, workdir):
    """Each backbone and enhancement lists the settings it reads (``setting_readers``); ``check_config`` reads them
    all from a config with no dataset, so llm4msr-compare and run_recbole stop on a bad value before they load data
    or build a knowledge store. Every listed key of every variant: the defaults pass, a value of the wrong kind is an
    error that starts with the key."""
    from recbole_llm4msr.config import MultiScenarioConfig
    from recbole_llm4msr.model.enhancements import enhancement_class
    from recbole_llm4msr.model.variants import VARIANTS
    from recbole_llm4msr.registry import get_model
    from recbole_llm4msr.settings import class_setting_readers, hidden_command_line

    checked = set()
    for name in sorted(VARIANTS) + ["MMoE", "STAR"]:
        cls = get_model(name)
        with hidden_command_line():
            config = MultiScenarioConfig(model=name, dataset="tiny", config_dict={"data_path": tiny})
        cls.check_config(config)
        keys = list(class_setting_readers(cls)) + list(class_setting_readers(enhancement_class(config["enhancement"]))
                                                         if config["enhancement"] != "none" else [])
        assert "dropout_prob" in keys
        for key in keys:
            saved, config[key] = config[key], "?"
            with pytest.raises(ValueError, match=rf"^{key} must be"):
                cls.check_config(config)
            config[key] = saved
            checked.add(key)
    assert {"expert_num", "star_mlp_sizes", "ple_levels", "meta_rank", "knowledge_norm", "dn_levels",
            "ep_gamma", "pn_momentum", "llm4msr_levels", "knowledge_control_seed"} <= checked
    # run_recbole: before the data is read and before the knowledge store would be built
    proc = run_cli("recbole_llm4msr.cli", "--model=MMoE_LLM4MSR", "--dataset=tiny", f"--data_path={tiny}",
                   "--epochs=1", "--meta_rank=-1", cwd=workdir, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "run_recbole: error: meta_rank must be in [0, inf], not -1" in proc.stderr
    assert "interactions" not in proc.stdout + proc.stderr  # the dataset was not loaded
    assert not os.path.exists(os.path.join(workdir, "saved")) and not os.path.exists(os.path.join(workdir, "log"))
    # RecBole's own batch size, for a stock model too
    proc = run_cli("recbole_llm4msr.cli", "--model=DeepFM", "--dataset=tiny", f"--data_path={tiny}",
                   "--train_batch_size=0", cwd=workdir, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "run_recbole: error: train_batch_size must be in [1, inf], not 0" in proc.stderr
    assert not os.path.exists(os.path.join(workdir, "saved")) and not os.path.exists(os.path.join(workdir, "log"))


def test_which_command_line_settings_are_known(tiny):
    from recbole_llm4msr.cli import check_command_line, command_line_settings

    assert command_line_settings(["--a=1", "--b", "c=2", "--d=1=2", "-e=3"]) == {"a": "1"}  # what RecBole reads
    data = f"--data_path={tiny}"
    check_command_line("MMoE", "tiny", [data, "--epochs=1", "--expert_num=2", "--learning_rate=0.1", "--llm=x"])
    # an enhancement given on the command line brings its settings with it
    check_command_line("MMoE", "tiny", [data, "--enhancement=llm4msr", "--meta_rank=8"])
    with pytest.raises(ValueError, match=r"--meta_rank \(read by other models or enhancements, not by MMoE\)"):
        check_command_line("MMoE", "tiny", [data, "--meta_rank=8"])
    check_command_line("SASRec", "tiny", [data, "--resume=x.last.pth", "--hidden_size=8"])  # sequential runs resume
    with pytest.raises(ValueError, match=r"--epoch: unknown setting 'epoch' \(did you mean epochs"):
        check_command_line("DeepFM", "tiny", [data, "--epoch=3"])
    with pytest.raises(ValueError, match=r"Unknown model 'MMOE'"):
        check_command_line("MMOE", "tiny", [data])


def test_yes_no_settings_are_read_strictly(tiny, workdir):
    """bool('maybe') is True: a yes/no setting with any other value than True/False (or 1/0, yes/no) is an error
    naming the key, not a silent True."""
    from recbole_llm4msr.settings import setting_bool

    for value, expected in ((True, True), (False, False), (1, True), (0, False), ("False", False), (" yes ", True),
                            ("no", False), ("1", True)):
        assert setting_bool({"k": value}, "k") is expected
    assert setting_bool({"k": None}, "k") is False and setting_bool({"k": None}, "k", default=True) is True
    for bad in ("maybe", "off", 2, 0.5, [True]):
        with pytest.raises(ValueError, match=r"k must be True or False, not"):
            setting_bool({"k": bad}, "k")
    proc = run_cli("recbole_llm4msr.cli", "--model=MMoE", "--dataset=tiny", f"--data_path={tiny}", "--epochs=1",
                   "--scenario_as_feature=maybe", cwd=workdir, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "scenario_as_feature must be True or False, not 'maybe'" in proc.stderr


def test_numeric_settings_are_read_strictly():
    """Widths, ranks, rates and seeds: a wrong type or a value out of range is an error naming the key and the range
    (meta_rank: -1 used to build a model; a string width failed inside torch with no key named)."""
    from recbole_llm4msr.settings import setting_number, setting_sizes

    assert setting_number({"k": 8}, "k", int, low=0) == 8 and setting_number({"k": 8.0}, "k", int) == 8
    assert setting_number({"k": "0.25"}, "k", float, low=0.0, high=1.0) == 0.25
    assert setting_number({"k": None}, "k", int, default=3) == 3
    for value, message in ((-1, r"k must be in \[0, inf\], not -1"), (2.5, "k must be an integer, not 2.5"),
                           ("abc", "k must be an integer, not 'abc'"), (True, "k must be an integer, not True"),
                           (None, "k must be an integer, not None")):
        with pytest.raises(ValueError, match=message):
            setting_number({"k": value}, "k", int, low=0)
    with pytest.raises(ValueError, match=r"k must be in \(0.0, 1.0\), not 1.0"):
        setting_number({"k": 1.0}, "k", float, low=0.0, high=1.0, open_interval=True)
    assert setting_sizes({"k": [32, 8]}, "k") == [32, 8] and setting_sizes({"k": []}, "k") == []
    for bad in ([0], ["32"], "abc", [True], 32):
        with pytest.raises(ValueError, match=r"k must be a list of layer widths \(integers >= 1\)"):
            setting_sizes({"k": bad}, "k")


@pytest.mark.parametrize("setting, message", [
    ({"SCENARIO_FIELD": "region"}, r"SCENARIO_FIELD 'region' is not a loaded column"),
    ({"LABEL_FIELD": "click"}, r"LABEL_FIELD 'click' is not a loaded column|\['click'\]"),
    ({"threshold": None, "load_col": {"inter": ["user_id", "item_id", "scenario"]}}, r"LABEL_FIELD 'label'"),
])
def test_broken_config_is_a_clear_error(setting, message, tiny, workdir):
    with pytest.raises(ScenarioDataError, match=message):
        load(tiny, **setting)
