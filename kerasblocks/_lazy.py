"""Public names that a package loads on first use (PEP 562).

A package lists its public names in `__all__` and writes one function
that imports them; `attach` gives it the module `__getattr__` and
`__dir__` that call that function once, when the first name is used.
Importing the package (or a light submodule of it, like
`kerasblocks.choices`) then costs no TensorFlow.
"""

from __future__ import annotations

import sys
from collections.abc import Callable


def attach(
    package: str, names: list[str], load: Callable[[], dict[str, object]]
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """`(__getattr__, __dir__)` for `package`, whose public `names` are
    what `load()` returns (by name)."""
    module = sys.modules[package]
    loading = False

    def __getattr__(name: str) -> object:
        nonlocal loading
        # While loading, a submodule asked for by `from package import X`
        # is not an attribute yet; Python then takes it from sys.modules.
        if name in names and not loading:
            loading = True
            try:
                loaded = load()
            finally:
                loading = False
            vars(module).update({n: loaded[n] for n in names})
            return loaded[name]
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted({*vars(module), *names})

    return __getattr__, __dir__
