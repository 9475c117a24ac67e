"""Per-scenario result tables (for the log) and the results JSON file."""
import json
import logging
import os
from enum import Enum

from recbole_llm4msr.atomic import atomic_write_text


def nested_result(flat, scenario_names, scenario_counts):
    """RecBole's flat result (``auc``, ``auc_<s>``, ...) -> ``{"auc", "logloss", "n", "scenarios": {s: {...}}}``."""
    if flat is None:
        return None
    out = {"auc": flat.get("auc"), "logloss": flat.get("logloss"), "n": int(sum(scenario_counts.values())),
           "scenarios": {}}
    for name in scenario_names:
        if scenario_counts.get(name, 0) == 0:
            continue
        out["scenarios"][name] = {
            "auc": flat.get(f"auc_{name}"),
            "logloss": flat.get(f"logloss_{name}"),
            "n": int(scenario_counts[name]),
        }
    return out


def format_table(title, nested):
    """A readable fixed-width table: one row per scenario, then the overall row."""
    def fmt(v):
        return "   n/a" if v is None else f"{v:.4f}"

    width = max([len("overall")] + [len(s) for s in nested["scenarios"]])
    lines = [title, f"  {'scenario':<{width}}  {'n':>8}  {'AUC':>7}  {'LogLoss':>7}"]
    for name, m in nested["scenarios"].items():
        lines.append(f"  {name:<{width}}  {m['n']:>8}  {fmt(m['auc']):>7}  {fmt(m['logloss']):>7}")
    lines.append(f"  {'overall':<{width}}  {nested['n']:>8}  {fmt(nested['auc']):>7}  {fmt(nested['logloss']):>7}")
    return "\n".join(lines)


def json_safe_config(config):
    """The run's final config as plain JSON values (devices, enums, classes become strings)."""
    def safe(v):
        if isinstance(v, Enum):
            return v.name
        if v is None or isinstance(v, (bool, int, float, str)):
            return v
        if isinstance(v, (list, tuple)):
            return [safe(x) for x in v]
        if isinstance(v, dict):
            return {str(k): safe(x) for k, x in v.items()}
        return str(v)

    return {str(k): safe(v) for k, v in config.final_config_dict.items()}


def log_file_path():
    """The file RecBole's logger writes to in this process, if any."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            return handler.baseFilename
    return None


def default_results_path(config):
    log = log_file_path()
    if log:
        return os.path.splitext(log)[0] + ".results.json"
    return os.path.join("log", config["model"], f"{config['model']}-{config['dataset']}.results.json")


def write_results(path, payload):
    atomic_write_text(path, json.dumps(payload, indent=2, sort_keys=False) + "\n")
    return path
