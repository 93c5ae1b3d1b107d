"""README.md's model table is the one the registry renders today."""

import json
import os

import pytest

import zoo
from zoo import _table

ROOT = os.path.join(os.path.dirname(__file__), "..")
GOLDENS = os.path.join(
    os.path.dirname(__file__), "goldens", "param_counts.json"
)


def test_readme_model_table_is_current():
    # The goldens hold the default-size counts (the conformance suite
    # checks them against built models), so nothing large is built here.
    with open(GOLDENS, encoding="utf-8") as f:
        counts = json.load(f)
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = _table.table_in(f.read())
    fresh = zoo.model_table(counts)
    assert readme == fresh, (
        "README.md's model table is not the registry's; regenerate it with "
        f"`{_table.REGENERATE}`"
    )
    rows = [line for line in readme.splitlines() if line.startswith("| `")]
    assert [r.split("`")[1] for r in rows] == zoo.list_models()


def test_table_markers_are_found_or_named():
    text = f"intro\n{_table.TABLE_BEGIN}\nold\n{_table.TABLE_END}\nrest\n"
    updated = _table.with_table(text, "| new |\n")
    assert updated == (
        f"intro\n{_table.TABLE_BEGIN}\n| new |\n{_table.TABLE_END}\nrest\n"
    )
    assert _table.table_in(updated) == "| new |\n"
    with pytest.raises(ValueError, match="No model table markers"):
        _table.with_table("no markers here", "| new |\n")
