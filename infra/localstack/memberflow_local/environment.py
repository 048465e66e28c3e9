"""Process environment changes that can be undone: the local stack runs the functions in its own process."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping


class EnvironmentPatch:
    """Sets and unsets variables, remembering the first value each had, so `restore()` puts everything back."""

    def __init__(self) -> None:
        self._saved: dict[str, str | None] = {}

    def set(self, values: Mapping[str, str]) -> None:
        for key, value in values.items():
            self._saved.setdefault(key, os.environ.get(key))
            os.environ[key] = str(value)

    def unset(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._saved.setdefault(key, os.environ.get(key))
            os.environ.pop(key, None)

    def restore(self) -> None:
        for key, value in self._saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved.clear()
