"""Test-suite wide rules: every test carries one of the markers
``unit``, ``integration`` or ``recipe`` (doctests count as unit tests), so
``pytest -m unit`` (``make test-fast``) selects the fast ones.
"""

import pytest
from _pytest.doctest import DoctestItem

KINDS = ("unit", "integration", "recipe")


def pytest_collection_modifyitems(config, items):
    unmarked = []
    for item in items:
        if isinstance(item, DoctestItem):
            item.add_marker(pytest.mark.unit)
        elif not any(item.get_closest_marker(kind) for kind in KINDS):
            unmarked.append(item.nodeid)
    if unmarked:
        raise pytest.UsageError(
            "tests without a unit / integration / recipe marker:\n  "
            + "\n  ".join(unmarked)
        )
