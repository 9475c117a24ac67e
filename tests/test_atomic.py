"""The one home of atomic writes: a failed writer leaves the old file / folder and no temporary litter."""
import os

import pytest

from recbole_llm4msr.atomic import atomic_path, atomic_write_json, atomic_write_text, building_dir, is_temporary


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
