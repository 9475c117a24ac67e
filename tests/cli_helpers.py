"""Run the console scripts in real subprocesses (distributed runs, kills) with a YAML config file."""
import json
import os
import subprocess
import sys

import yaml


def write_yaml(path, settings):
    with open(path, "w") as f:
        yaml.safe_dump(settings, f)
    return str(path)


def cli_command(module, *args):
    return [sys.executable, "-m", module, *map(str, args)]


def env():
    e = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    e["PYTHONPATH"] = root + os.pathsep + e.get("PYTHONPATH", "")
    return e


def run_cli(module, *args, cwd, timeout=900, check=True):
    proc = subprocess.run(cli_command(module, *args), cwd=cwd, env=env(), capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{module} {' '.join(map(str, args))} failed ({proc.returncode}):\n"
                             f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


def read_json(path):
    with open(path) as f:
        return json.load(f)
