"""The one home of atomic writes: a failed writer leaves the old file / folder and no temporary litter."""
import os

import pytest

from recbole_llm4msr.atomic import atomic_path, atomic_write_csv, atomic_write_json, atomic_write_text, building_dir, is_temporary


class Boom(Exception):
    pass


def test_a_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "a.txt"
    atomic_write_text(target, "old")

    def half(f):
        f.write("new but torn")
        raise Boom()

    from recbole_llm4msr.atomic import atomic_write

    with pytest.raises(Boom):
        atomic_write(target, half)
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["a.txt"]
    atomic_write_json(target, {"x": 1})
    assert target.read_text() == '{"x": 1}'


def test_rows_written_as_csv(tmp_path):
    import csv

    path = str(tmp_path / "rows.csv")
    atomic_write_csv(path, [{"b": 1, "a": "x"}, {"a": "y"}])  # columns: the first row's keys; missing -> empty
    with open(path, newline="") as f:
        assert list(csv.reader(f)) == [["b", "a"], ["1", "x"], ["", "y"]]
    atomic_write_csv(path, ({"a": i} for i in range(2)), ["a", "c"])  # given columns, rows from a generator
    with open(path, newline="") as f:
        assert list(csv.reader(f)) == [["a", "c"], ["0", ""], ["1", ""]]
    with pytest.raises(ValueError):  # a column not named is an error, and the file is left as it was
        atomic_write_csv(path, [{"a": 1, "z": 2}], ["a"])
    with open(path, newline="") as f:
        assert list(csv.reader(f))[0] == ["a", "c"]
    assert [n for n in os.listdir(tmp_path) if is_temporary(n)] == []


def test_atomic_path_for_writers_that_take_a_path(tmp_path):
    import numpy as np

    target = tmp_path / "v.npz"
    with atomic_path(target) as tmp:
        assert is_temporary(os.path.basename(tmp)) and tmp.endswith(".npz")
        np.savez(tmp, a=np.arange(3))
    assert np.load(target)["a"].tolist() == [0, 1, 2] and os.listdir(tmp_path) == ["v.npz"]


def test_a_failed_folder_build_leaves_the_old_folder(tmp_path):
    with building_dir(tmp_path, "ds") as tmp:
        (tmp_path / tmp / "f").write_text("1")
    with pytest.raises(Boom):
        with building_dir(tmp_path, "ds") as tmp:
            (tmp_path / tmp / "f").write_text("2")
            raise Boom()
    assert (tmp_path / "ds" / "f").read_text() == "1" and os.listdir(tmp_path) == ["ds"]
    with building_dir(tmp_path, "ds") as tmp:
        (tmp_path / tmp / "g").write_text("3")
    assert os.listdir(tmp_path / "ds") == ["g"]  # replaced whole


def test_the_results_lock_holds_other_processes_out(tmp_path):
    import subprocess
    import sys
    import time

    from recbole_llm4msr.atomic import locked

    log, target = tmp_path / "order.txt", tmp_path / "results.csv"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\n"
        "from recbole_llm4msr.atomic import locked\n"
        f"with locked({str(target)!r}):\n"
        f"    open({str(log)!r}, 'a').write('A-start\\n')\n"
        "    time.sleep(1.5)\n"
        f"    open({str(log)!r}, 'a').write('A-end\\n')\n")])
    for _ in range(600):  # until the other process holds the lock
        if log.exists():
            break
        time.sleep(0.05)
    with locked(str(target)):
        with open(log, "a") as f:
            f.write("B\n")
    holder.wait(timeout=60)
    assert log.read_text().split() == ["A-start", "A-end", "B"]
