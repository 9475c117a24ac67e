"""Property-based tests (hypothesis) for the converters and the prompt builder."""
import os
import tempfile
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dataset_converters import csv as csv_conv
from dataset_converters.writer import ConversionError, read_atomic, scenario_split, scenario_stats

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# ---------------------------------------------------------------------------------------------- the split
@FAST
@given(st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=1, max_size=300), st.integers(0, 2**31 - 1))
def test_split_is_a_seeded_partition_that_keeps_row_order(scenarios, seed):
    parts = scenario_split(scenarios, seed=seed)
    joined = np.concatenate(parts)
    assert sorted(joined.tolist()) == list(range(len(scenarios)))  # every row exactly once
    assert all((np.diff(p) > 0).all() for p in parts)  # original order kept inside each part
    again = scenario_split(scenarios, seed=seed)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again))
    counts = Counter(scenarios)
    for value, n in counts.items():  # 8:1:1 inside each scenario; rounding leftovers go to training
        valid, test = (sum(scenarios[i] == value for i in p) for p in parts[1:])
        assert valid == int(n * 0.1) and test == int(n * 0.1)


@FAST
@given(st.lists(st.tuples(st.integers(0, 9), st.integers(0, 20), st.sampled_from([0.0, 1.0]),
                          st.sampled_from(["x", "y", "z"])), min_size=1, max_size=200))
def test_statistics_add_up(rows):
    df = pd.DataFrame(rows, columns=["u", "i", "y", "s"])
    stats = scenario_stats(df, "u", "i", "y", "s")
    per = stats["scenarios"]
    assert sum(s["interactions"] for s in per.values()) == len(df)
    assert sum(s["positives"] for s in per.values()) == int(df["y"].sum())
    for name, s in per.items():
        part = df[df["s"] == name]
        assert s["users"] == part["u"].nunique() and s["items"] == part["i"].nunique()
        assert 0.0 <= s["sparsity"] < 1.0
        if not part.duplicated(["u", "i"]).any():  # the paper's formula; repeats can push it below 0 (then 0)
            assert s["sparsity"] == pytest.approx(1 - len(part) / (s["users"] * s["items"]))


# ---------------------------------------------------------------------------------------------- CSV converter
token = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=0, max_size=6)


@FAST
@given(st.lists(st.tuples(token, token, st.sampled_from(["0", "1", "1.0", "0.0"]), st.sampled_from(["s1", "s2"])),
                min_size=1, max_size=60))
@example([("\r0", "a", "1", "s1")])  # pandas writes a \r unquoted; read back it was a line break ('0')
@example([("x", "\r", "0", "s2"), ("y", "b", "1", "s1")])  # ... or a row cut in two
def test_csv_converter_keeps_every_row_or_fails_clearly(rows):
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "in.csv")
        pd.DataFrame(rows, columns=["u", "i", "y", "s"]).to_csv(src, index=False)
        try:
            csv_conv.convert(src, tmp, "p", "u", "i", "y", "s")
        except ConversionError as e:
            assert "in.csv" in str(e)  # the error names the input file
            return
        written = pd.concat([read_atomic(os.path.join(tmp, "p", f"p.{part}.inter"))
                             for part in ("train", "valid", "test")])
        got = Counter(zip(written["user_id"], written["item_id"], written["label"].astype(float), written["scenario"]))
        want = Counter((u, i, float(y), s) for u, i, y, s in rows)
        assert got == want


# ---------------------------------------------------------------------------------------------- prompt builder
@pytest.fixture(scope="module")
def builder(data_dir):
    from recbole_llm4msr.knowledge.files import DatasetFiles
    from recbole_llm4msr.knowledge.prompts import PromptBuilder
    from tests.knowledge_helpers import make_spec

    return PromptBuilder(DatasetFiles.from_spec(make_spec(data_dir)), max_items_per_scenario=4, max_prompt_tokens=260)


title = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=40).filter(
    lambda t: ";" not in t and t.strip() == t and t)


@FAST
@given(st.dictionaries(st.sampled_from(["young", "middle", "senior", "unknown"]), st.lists(title, max_size=8),
                       max_size=4))
def test_user_prompt_shows_recent_prefixes_within_budget(builder, history):
    prompt = builder.user_prompt(history)
    lines = {line.split(": ", 1)[0][len("Scenario "):]: line for line in prompt.splitlines()
             if line.startswith("Scenario ") and ": " in line}
    shown = 0
    for scen, items in history.items():
        line = lines.get(scen)
        if scen not in builder.scenarios:
            assert line is None  # a scenario the dataset does not have is never invented
            continue
        if line is None:
            continue
        options = ["Scenario " + scen + ": " + "; ".join(items[:k]) for k in range(1, min(len(items), 4) + 1)]
        assert line in options  # a prefix (most recent first) of the history, capped at 4 items
        shown += options.index(line) + 1
    if shown:
        assert builder.count_tokens(prompt) <= builder.max_prompt_tokens
    if not any(items for s, items in history.items() if s in builder.scenarios):
        assert "(no positive interactions recorded)" in prompt
    assert builder.user_prompt(history) == prompt  # deterministic
    assert "${" not in prompt or any("${" in t for items in history.values() for t in items)
