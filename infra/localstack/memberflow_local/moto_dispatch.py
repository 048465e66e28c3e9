"""moto finds the method that answers a request once per class, not once per request.

For every request, moto lists the handler class's functions with `inspect.getmembers` (a walk over every attribute
of the class and its bases, a few hundred) only to check that the action has a method of that name. The classes do
not change once the server runs, so `install()` keeps each class's list.
"""

from __future__ import annotations

import functools


def install() -> None:
    """Patch moto's request dispatch once per process (idempotent)."""
    from moto.core import responses, utils

    if getattr(responses.method_names_from_class, "_cached", False):
        return
    listed = functools.cache(utils.method_names_from_class)
    listed._cached = True  # type: ignore[attr-defined]
    responses.method_names_from_class = listed  # type: ignore[assignment]
