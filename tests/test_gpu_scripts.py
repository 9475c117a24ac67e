"""The GPU lease scripts' shared shell helpers (benchmarks/gpu_lib.sh) work without a GPU: a step runs in its own
folder under its time limit and is recorded in steps.tsv, a step with no time left is skipped, and both lease
scripts source the helpers rather than define their own."""
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIB = ROOT / "benchmarks" / "gpu_lib.sh"


def run(script, out, budget):
    return subprocess.run(["bash", "-c", f'OUT="{out}"; BUDGET={budget}; START=$(date +%s); . "{LIB}"\n{script}'],
                          capture_output=True, text=True, timeout=60)


def steps(out):
    return [line.split("\t") for line in (out / "steps.tsv").read_text().splitlines()]


def test_a_step_runs_in_its_own_folder_and_is_recorded(tmp_path):
    r = run("step hello 30 bash -c 'pwd; exit 3'; echo rc=$?", tmp_path, 100)
    assert "rc=3" in r.stdout and "== hello: exit 3" in r.stdout
    assert (tmp_path / "hello.log").read_text().strip() == str(tmp_path / "work" / "hello")
    assert steps(tmp_path)[0][:2] == ["hello", "3"]


def test_a_step_is_cut_at_the_scripts_budget_or_skipped(tmp_path):
    r = run("step slow 50 sleep 20; echo rc=$?; step late 50 true; echo rc=$?", tmp_path, 32)
    assert "rc=124" in r.stdout  # timeout: the budget (32 s - 20 s margin) cut the step's own 50 s
    assert steps(tmp_path)[0][:2] == ["slow", "124"] and int(steps(tmp_path)[0][2]) <= 14
    assert steps(tmp_path)[1] == ["late", "skipped", "0"]


def test_wait_for_gives_up_when_the_time_is_nearly_out(tmp_path):
    (tmp_path / "ready").touch()
    r = run(f'wait_for "{tmp_path}/ready"; echo a=$?; wait_for "{tmp_path}/never"; echo b=$?', tmp_path, 50)
    assert "a=0" in r.stdout and "b=1" in r.stdout


def test_lease_start_reads_the_command_line_and_has_tells_the_lanes(tmp_path):
    script = (f'. "{LIB}"; cd /; lease_start demo.sh a,b "$@"; echo "$OUT|$BUDGET|$LANES|$PWD|$RECBOLE_LLM4MSR_CACHE"; '
              'for l in a c; do has $l && echo "$l yes" || echo "$l no"; done')
    r = subprocess.run(["bash", "-c", script, "x", str(tmp_path / "o"), "77", "c"], capture_output=True, text=True,
                       env={"PATH": "/usr/bin:/bin"})
    out, budget, lanes, cwd, cache = r.stdout.splitlines()[0].split("|")
    assert (out, budget, lanes, cwd) == (str(tmp_path / "o"), "77", ",c,", str(ROOT)) and cache == out + "/cache"
    assert r.stdout.splitlines()[1:] == ["a no", "c yes"] and (tmp_path / "o").is_dir()
    default = subprocess.run(["bash", "-c", script, "x", str(tmp_path / "p")], capture_output=True, text=True)
    assert "|540|,a,b,|" in default.stdout and default.stdout.splitlines()[1:] == ["a yes", "c no"]
    missing = subprocess.run(["bash", "-c", f'. "{LIB}"; lease_start demo.sh a; echo reached'], capture_output=True,
                             text=True)
    assert missing.returncode != 0 and "usage: demo.sh OUT_DIR" in missing.stderr and "reached" not in missing.stdout
    assert "[LANES: a comma list of a]" in missing.stderr
    # a script without lanes says so in its usage, and refuses a lane it would ignore
    plain = f'. "{LIB}"; lease_start plain.sh "" "$@"; echo reached'
    ok = subprocess.run(["bash", "-c", plain, "x", str(tmp_path / "q"), "5"], capture_output=True, text=True)
    assert ok.returncode == 0 and "reached" in ok.stdout
    lane = subprocess.run(["bash", "-c", plain, "x", str(tmp_path / "q"), "5", "a"], capture_output=True, text=True)
    assert lane.returncode == 2 and "plain.sh has no lanes" in lane.stderr and "'a' given" in lane.stderr
    assert "LANES" not in lane.stderr and "reached" not in lane.stdout


@pytest.mark.parametrize("script", ["gpu_check.sh", "gpu_amazon.sh", "gpu_align.sh"])
def test_the_lease_scripts_source_the_helpers(script):
    text = (ROOT / "benchmarks" / script).read_text()
    assert '. "$(dirname "$0")/gpu_lib.sh"' in text and f"lease_start {script} " in text
    for helper in ("left() {", "step() {", "wait_for() {", "has() {", "OUT=$(mkdir"):
        assert helper not in text, f"{script} defines {helper} again: use benchmarks/gpu_lib.sh"
    assert subprocess.run(["bash", "-n", str(ROOT / "benchmarks" / script)]).returncode == 0


@pytest.mark.parametrize("script", ["gpu_pack.sh", "gpu_boot.sh"])
def test_the_lease_carry_scripts_parse_and_split_the_wheel_under_a_calls_size(script):
    text = (ROOT / "benchmarks" / script).read_text()
    assert subprocess.run(["bash", "-n", str(ROOT / "benchmarks" / script)]).returncode == 0
    if script == "gpu_pack.sh":  # three parts of 40 MB: each fits 64 MiB beside the repository's ~25 MB
        assert "split -b 40000000" in text and all(f".gpu/{c}" in text for c in ("c1", "c2", "c3"))
    else:
        assert "sha256sum -c" in text and "--no-index" in text and "PYTHONPATH=/tmp/site:$PWD" in text


def test_gpu_pack_sends_the_tree_without_the_results_folder_and_puts_it_back(tmp_path):
    """A lease's call carries the repository and at most 64 MiB in all: --results-off takes benchmarks/results out of
    git's index (ignored, still on disk), --results-on puts it back with nothing else changed; a staged change
    elsewhere is refused (its own commit would then delete the results)."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=120)
    shutil.copy(ROOT / "benchmarks" / "gpu_pack.sh", clone / "benchmarks" / "gpu_pack.sh")  # the script under test
    git = lambda *a: subprocess.run(["git", "-C", str(clone), *a], capture_output=True, text=True, check=True).stdout
    status = git("status", "--porcelain")
    pack = lambda flag: subprocess.run(["bash", str(clone / "benchmarks" / "gpu_pack.sh"), flag],
                                       capture_output=True, text=True, timeout=60)
    before = git("ls-files", "benchmarks/results").split()
    assert before
    off = pack("--results-off")
    assert off.returncode == 0 and "the tree now sends" in off.stdout
    assert git("ls-files", "benchmarks/results") == ""  # not tracked, and ignored, so not sent:
    assert git("ls-files", "--others", "--exclude-standard", "benchmarks/results") == ""
    assert (clone / before[0]).is_file()  # still on disk
    on = pack("--results-on")
    assert on.returncode == 0 and "back in the index" in on.stdout
    assert git("ls-files", "benchmarks/results").split() == before and git("status", "--porcelain") == status
    (clone / "README.md").write_text("changed\n")
    git("add", "README.md")
    refused = pack("--results-off")
    assert refused.returncode == 2 and "staged changes" in refused.stderr
    assert git("ls-files", "benchmarks/results").split() == before
