"""Atomic file and folder writes: the one home of "a reader sees the old version or the complete new one".

Every writer in the project (converters, knowledge store, checkpoints, results, comparison tables) goes through
these helpers; a killed process never leaves a torn file or a folder that looks finished.

* :func:`atomic_path` -- a context manager yielding a temporary path next to the target; on success the
  temporary file is fsynced and renamed over the target, on error it is removed. For writers that take a path
  (``np.save``, ``torch.save``).
* :func:`atomic_write` / :func:`atomic_write_text` / :func:`atomic_write_json` / :func:`atomic_write_csv` -- the
  same for text written through a file object.
* :func:`temp_dir` + :func:`replace_dir` -- build a folder under a hidden temporary name, then swap it into place.
* :func:`locked` -- an exclusive lock for a read-modify-write of a file that several processes update (a results
  table): each re-reads it under the lock, so none loses the rows another wrote.

This module imports nothing of ours: the converters, the knowledge library and the training code all use it.
"""
import contextlib
import csv
import json
import os
import shutil
import tempfile


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync(path):
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path, suffix=None):
    """Yield a temporary path in ``path``'s folder; rename it onto ``path`` when the block ends without error.

    ``suffix`` (default: ``path``'s extension) keeps writers that append an extension (``np.savez``) happy."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    if suffix is None:
        suffix = os.path.splitext(path)[1]
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=f".tmp{suffix}")
    os.close(fd)
    try:
        yield tmp
        _fsync(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes the file private; the result is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write(path, write, mode="w", encoding="utf-8"):
    """Call ``write(f)`` on a temporary file opened with ``mode``, then rename it onto ``path``."""
    with atomic_path(path) as tmp:
        with open(tmp, mode, **({} if "b" in mode else {"encoding": encoding, "newline": ""})) as f:
            write(f)
    return path


def atomic_write_text(path, text, encoding="utf-8"):
    return atomic_write(path, lambda f: f.write(text), encoding=encoding)


def atomic_write_json(path, obj, indent=None):
    return atomic_write(path, lambda f: json.dump(obj, f, ensure_ascii=False, indent=indent))


def atomic_write_csv(path, rows, fieldnames=None):
    """``rows`` (dicts) as a CSV with a header: columns ``fieldnames`` (default: the first row's keys); a row's missing
    columns are empty."""
    rows = list(rows)

    def write(f):
        w = csv.DictWriter(f, fieldnames=list(fieldnames if fieldnames is not None else rows[0]), restval="")
        w.writeheader()
        w.writerows(rows)

    return atomic_write(path, write)


@contextlib.contextmanager
def locked(path):
    """An exclusive lock on ``path.lock`` while the block runs, between processes and threads, on any OS
    (the ``filelock`` package: ``flock`` on POSIX, ``msvcrt`` locking on Windows)."""
    from filelock import FileLock

    with FileLock(f"{path}.lock"):
        yield


def is_temporary(name):
    """True for the names :func:`atomic_path` and :func:`temp_dir` use (leftovers of a killed writer)."""
    return name.startswith(".") and (".tmp" in name or ".partial-" in name)


def temp_dir(parent, name):
    """A new private-named folder ``parent/.name.partial-XXXX`` to build ``parent/name`` in (world-readable)."""
    os.makedirs(parent, exist_ok=True)
    path = tempfile.mkdtemp(dir=parent, prefix=f".{name}.partial-")
    os.chmod(path, 0o755)  # mkdtemp makes it private; the result is an ordinary folder
    return path


def remove_stale_temp_dirs(parent, name):
    """Remove ``parent/.name.partial-*`` folders left by an interrupted build; returns what was removed."""
    removed = []
    if os.path.isdir(parent):
        for entry in os.listdir(parent):
            if entry.startswith(f".{name}.partial-"):
                shutil.rmtree(os.path.join(parent, entry), ignore_errors=True)
                removed.append(os.path.join(parent, entry))
    return removed


def replace_dir(tmp, final):
    """Move the finished folder ``tmp`` to ``final``; an existing ``final`` is replaced (renamed aside first, so
    ``final`` is always either the old complete folder or the new one)."""
    old = None
    if os.path.exists(final):
        old = f"{final}.old-{os.getpid()}"
        os.rename(final, old)
    os.rename(tmp, final)
    if old:
        shutil.rmtree(old, ignore_errors=True)
    return final


@contextlib.contextmanager
def building_dir(parent, name):
    """Build ``parent/name`` in a temporary folder yielded here; swapped into place on success, removed on error."""
    tmp = temp_dir(parent, name)
    try:
        yield tmp
        replace_dir(tmp, os.path.join(parent, name))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
