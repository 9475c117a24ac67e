"""The layering of ../shared/docs/architecture.md, checked on the source: import arrows point one way.

The import graph is read with ``ast`` from every module of ``recbole_llm4msr/`` and ``dataset_converters/``
(imports inside functions included: a lazy import is still an arrow). It must have no cycle, and each layer may
only import what is below it.
"""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("recbole_llm4msr", "dataset_converters")

# leaves: modules any layer may use; they import nothing of ours
LEAVES = ("recbole_llm4msr.atomic", "recbole_llm4msr.settings", "recbole_llm4msr.compat")

# layer -> the only modules of ours it may import (prefixes), besides itself and the leaves
ALLOWED = {
    "dataset_converters": ("dataset_converters",),
    "recbole_llm4msr.knowledge": ("recbole_llm4msr.knowledge", "dataset_converters"),
    "recbole_llm4msr.align": ("recbole_llm4msr.align", "recbole_llm4msr.knowledge", "dataset_converters"),
    "recbole_llm4msr.layers": ("recbole_llm4msr.layers",),
    "recbole_llm4msr.data": ("recbole_llm4msr.data", "dataset_converters"),
    # (and the TSLRec pipeline's settings dataclass, which a TSLRec variant checks before any run; not the pipeline)
    "recbole_llm4msr.model": ("recbole_llm4msr.model", "recbole_llm4msr.layers", "recbole_llm4msr.knowledge",
                              "recbole_llm4msr.tslrec.settings"),
    # TSLRec's pipeline: a tool like align, which also trains a stock RecBole model (config, registry) in stage 0
    "recbole_llm4msr.tslrec": ("recbole_llm4msr.tslrec", "recbole_llm4msr.align", "recbole_llm4msr.knowledge",
                               "dataset_converters", "recbole_llm4msr.config", "recbole_llm4msr.registry"),
}
for leaf in LEAVES:
    ALLOWED[leaf] = ()


def module_name(path):
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def our_modules():
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            modules[module_name(path)] = path
    return modules


def imports_of(name, path, modules):
    """The modules of ours that ``name`` imports (``from a import b`` counts as ``a.b`` when that is a module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:  # import a.b.c where only a.b is ours: a.b
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph():
    modules = our_modules()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def cycles(graph):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, on_stack, stack, out, counter = {}, {}, set(), [], [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    sys.setrecursionlimit(max(10000, sys.getrecursionlimit()))
    for v in graph:
        if v not in index:
            visit(v)
    return out


def _within(name, prefix):
    return name == prefix or name.startswith(prefix + ".")


def violations(graph):
    """``(importer, imported)`` arrows that point the wrong way."""
    bad = []
    for importer, targets in graph.items():
        layer = max((p for p in ALLOWED if _within(importer, p)), key=len, default=None)
        if layer is None:
            continue
        allowed = ALLOWED[layer] + (layer,) + (LEAVES if layer not in LEAVES else ())
        bad += [(importer, t) for t in sorted(targets) if not any(_within(t, a) for a in allowed)]
    # models never reach the training machinery (trainer, DDP, prepare, registry, config)
    return bad


def test_the_import_graph_has_no_cycle():
    assert cycles(import_graph()) == []


def test_every_arrow_points_down():
    assert violations(import_graph()) == []


def test_the_checks_fail_when_an_arrow_is_added_back():
    graph = import_graph()
    assert graph["recbole_llm4msr.knowledge.extract"]  # the parser found the real imports
    assert "recbole_llm4msr.knowledge.store" in graph["recbole_llm4msr.knowledge.extract"]
    # the old cycle: knowledge -> config -> registry -> model -> knowledge
    broken = {k: set(v) for k, v in graph.items()}
    broken["recbole_llm4msr.knowledge.store"].add("recbole_llm4msr.config")
    assert ("recbole_llm4msr.knowledge.store", "recbole_llm4msr.config") in violations(broken)
    assert any("recbole_llm4msr.knowledge.store" in c for c in cycles(broken))
    for importer, target in [("recbole_llm4msr.layers.meta", "recbole_llm4msr.model.backbones.base"),
                             ("dataset_converters.writer", "recbole_llm4msr.trainer"),
                             ("recbole_llm4msr.model.enhancements.llm4msr", "recbole_llm4msr.distributed"),
                             ("recbole_llm4msr.model.backbones.base", "recbole_llm4msr.recovery"),
                             ("recbole_llm4msr.atomic", "recbole_llm4msr.knowledge.store")]:
        added = {k: set(v) for k, v in graph.items()}
        added[importer].add(target)
        assert (importer, target) in violations(added), (importer, target)


def test_relative_and_from_imports_are_resolved(tmp_path):
    modules = {"pkg": None, "pkg.a": None, "pkg.sub": None, "pkg.sub.b": None}
    src = tmp_path / "b.py"
    src.write_text("from .. import a\nfrom ..sub import b as _b\nimport pkg.sub.b.thing\n")
    assert imports_of("pkg.sub.c", src, modules) == {"pkg.a", "pkg.sub.b"}


@pytest.mark.parametrize("module", ["recbole_llm4msr.knowledge.cli", "recbole_llm4msr.align.cli",
                                    "dataset_converters.__main__"])
def test_offline_pipelines_load_without_recbole(module):
    """llm4msr-knowledge and the converters never import RecBole (nor our training code)."""
    code = (f"import sys, importlib; importlib.import_module({module!r}); "
            "bad = sorted(m for m in sys.modules if m == 'recbole' or m.startswith('recbole.') or "
            "m in ('recbole_llm4msr.config', 'recbole_llm4msr.registry', 'recbole_llm4msr.model')); print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"
