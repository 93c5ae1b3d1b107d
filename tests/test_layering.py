"""The project's layering rules, read from the source's import statements.

- `kerasblocks` never imports `zoo` or `tools` (not even inside a
  function), and `zoo` never imports `tools`;
- `kerasblocks.data` never imports `kerasblocks.training` (the run is
  built on the data, not the other way round);
- no two modules import each other, directly or around a longer circle,
  not even through imports inside functions;
- no module, test modules included, grows past the house limit of
  ~450 lines;
- no function, test functions included, has more than 80 lines of code
  (its signature counted; its docstring, comments and blank lines not).
"""

from __future__ import annotations

import ast
import io
import pathlib
import tokenize

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("kerasblocks", "zoo", "tools")
MAX_LINES = 460
MAX_FUNCTION_LINES = 80
# Tokens that are not code: a line holding only these does not count.
_NOT_CODE = {
    tokenize.COMMENT,
    tokenize.NL,
    tokenize.NEWLINE,
    tokenize.INDENT,
    tokenize.DEDENT,
    tokenize.ENDMARKER,
}


def _modules() -> dict[str, pathlib.Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _owner(name: str) -> str | None:
    """The project module that importing `name` loads, if any."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imported(module: str, node: ast.AST) -> set[str]:
    """Project modules an import statement loads (ancestor packages of
    `module` itself excluded: they are already loading)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            is_package = MODULES[module].name == "__init__.py"
            anchor = module if is_package else module.rpartition(".")[0]
            for _ in range(node.level - 1):
                anchor = anchor.rpartition(".")[0]
            base = f"{anchor}.{base}" if base else anchor
        # `from package import submodule` loads the submodule.
        names = [
            f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base
            for a in node.names
        ]
    else:
        return set()
    owners = {_owner(name) for name in names}
    return {
        owner
        for owner in owners
        if owner and owner != module and not module.startswith(owner + ".")
    }


def _top_level_statements(tree: ast.Module):
    """Statements run at import time: the body, and the bodies of its
    `if`/`try` blocks (not functions or classes' methods)."""
    pending = list(tree.body)
    while pending:
        node = pending.pop()
        yield node
        if isinstance(node, (ast.If, ast.Try)):
            for field in ("body", "orelse", "finalbody"):
                pending.extend(getattr(node, field, []))
            for handler in getattr(node, "handlers", []):
                pending.extend(handler.body)


def _graphs():
    """({module: modules imported at import time}, {module: any import})."""
    eager, every = {}, {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text())
        eager[module] = set().union(
            *(_imported(module, n) for n in _top_level_statements(tree))
        )
        every[module] = set().union(
            *(_imported(module, n) for n in ast.walk(tree))
        )
    return eager, every


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph.get(node, ())):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def test_the_graph_reader_sees_the_imports_it_must():
    eager, every = _graphs()
    assert len(MODULES) > 120
    assert "kerasblocks.io.keras_weights" in eager["kerasblocks.io.weights"]
    assert "zoo._registry" in eager["zoo.resnet"]
    # A late import (inside a function) counts only in the full graph.
    late = "kerasblocks.io._tied"
    assert late in every["kerasblocks.io.safety"]
    assert late not in eager["kerasblocks.io.safety"]
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [
        ["a", "b", "c"]
    ]


def test_the_library_never_imports_the_zoo_or_the_tools():
    _, every = _graphs()
    crossing = sorted(
        f"{module} -> {target}"
        for module, targets in every.items()
        for target in targets
        if (
            module.startswith("kerasblocks")
            and target.split(".")[0] != "kerasblocks"
        )
        or (module.startswith("zoo") and target.startswith("tools"))
    )
    assert crossing == []


def test_the_data_package_never_imports_the_run():
    _, every = _graphs()
    data = {m: t for m, t in every.items() if m.startswith("kerasblocks.data")}
    assert "kerasblocks.data.folders" in data
    assert (
        sorted(
            f"{module} -> {target}"
            for module, targets in data.items()
            for target in targets
            if target.startswith("kerasblocks.training")
        )
        == []
    )


def test_no_import_circles_at_import_time():
    eager, _ = _graphs()
    assert _circles(eager) == []


def test_no_circle_even_through_late_imports():
    _, every = _graphs()
    io = {m: t for m, t in every.items() if m.startswith("kerasblocks.io.")}
    assert len(io) >= 15 and "kerasblocks.io.keras_format" in io
    assert _circles(every) == []


def test_no_module_past_the_house_limit():
    tests = sorted((ROOT / "tests").rglob("*.py"))
    assert ROOT / "tests" / "test_layering.py" in tests
    long = sorted(
        f"{path.relative_to(ROOT)}: {n} lines"
        for path in [*MODULES.values(), *tests]
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    )
    assert long == []


def _code_lines(source: str) -> set[int]:
    """Line numbers holding a code token (a string spanning several
    lines counts on every one)."""
    lines = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in _NOT_CODE:
            lines.update(range(token.start[0], token.end[0] + 1))
    return lines


def _function_sizes(source: str) -> dict[str, int]:
    """{"name:line": lines of code} of every function in `source`,
    nested ones included; a function's docstring does not count."""
    code = _code_lines(source)
    sizes = {}
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        lines = set(range(node.lineno, node.end_lineno + 1)) & code
        first = node.body[0]
        if isinstance(first, ast.Expr) and isinstance(
            getattr(first.value, "value", None), str
        ):
            lines -= set(range(first.lineno, first.end_lineno + 1))
        sizes[f"{node.name}:{node.lineno}"] = len(lines)
    return sizes


def test_the_function_counter_counts_code_only():
    source = (
        "def f(\n"
        "    a,\n"
        "):\n"
        '    """Doc.\n'
        "\n"
        '    More doc."""\n'
        "    # a comment\n"
        "\n"
        "    def g():\n"
        "        return '''two\n"
        "lines'''\n"
        "    return a\n"
    )
    assert _function_sizes(source) == {"f:1": 7, "g:9": 3}


def test_no_function_past_the_house_limit():
    paths = [*MODULES.values(), *sorted((ROOT / "tests").rglob("*.py"))]
    long = sorted(
        f"{path.relative_to(ROOT)}:{function}: {n} lines of code"
        for path in paths
        for function, n in _function_sizes(path.read_text()).items()
        if n > MAX_FUNCTION_LINES
    )
    assert long == [], "over the limit:\n" + "\n".join(long)
