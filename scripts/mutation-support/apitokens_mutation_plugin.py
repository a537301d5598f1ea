"""pytest plugin loaded only by mutation runs (scripts/mutation, ``-p`` in pyproject).

Mutants are told apart only if no state outlives a test: every ``functools`` cache of an
``apitokens`` module (``_parse_address``...) is emptied before each test, so a result
computed by one test (or by the unmutated code while mutmut records which tests reach
which function) is never served to another.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest


def _clear_caches() -> None:
    for name, module in list(sys.modules.items()):
        if module is None or not (name == "apitokens" or name.startswith("apitokens.")):
            continue
        for value in list(vars(module).values()):
            clear = getattr(value, "cache_clear", None)
            if callable(clear):
                clear()


@pytest.fixture(autouse=True)
def _apitokens_caches_cleared() -> Iterator[None]:
    _clear_caches()
    yield
    _clear_caches()
