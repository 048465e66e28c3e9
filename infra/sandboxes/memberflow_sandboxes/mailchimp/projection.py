"""Mailchimp's `fields` and `exclude_fields` query parameters: projections of a response body.

Both take comma-separated dot paths from the response root (`members.email_address`); a path
through a list applies to each element. `fields` keeps only the listed paths and the parents
holding them, `exclude_fields` then removes its paths, and paths naming nothing are ignored.
"""

from __future__ import annotations

from typing import Any

# A parsed path set: key -> sub-tree, or WHOLE when the path ends at that key.
Tree = dict[str, Any]
WHOLE = None


def parse_paths(raw: str | None) -> Tree:
    tree: Tree = {}
    for path in (raw or "").split(","):
        parts = [part.strip() for part in path.split(".")]
        if not all(parts):
            continue
        node = tree
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if child is WHOLE:  # an ancestor is already kept or removed whole
                break
            node = child
        else:
            node[parts[-1]] = WHOLE
    return tree


def project(payload: Any, fields: str | None, exclude_fields: str | None) -> Any:
    """The payload as Mailchimp answers it for these query parameters; the input is left untouched."""
    keep, drop = parse_paths(fields), parse_paths(exclude_fields)
    if keep:
        payload = _keep(payload, keep)[0]
    if drop:
        payload = _drop(payload, drop)
    return payload


def _keep(value: Any, tree: Tree) -> tuple[Any, bool]:
    """The parts of `value` named by `tree`, and whether any path matched."""
    if isinstance(value, list):
        kept = [_keep(item, tree) for item in value]
        return [item for item, _ in kept], not value or any(matched for _, matched in kept)
    if not isinstance(value, dict):
        return value, False
    result = {}
    for key, subtree in tree.items():
        if key not in value:
            continue
        if subtree is WHOLE:
            result[key] = value[key]
            continue
        sub, matched = _keep(value[key], subtree)
        if matched:
            result[key] = sub
    return result, bool(result)


def _drop(value: Any, tree: Tree) -> Any:
    if isinstance(value, list):
        return [_drop(item, tree) for item in value]
    if not isinstance(value, dict):
        return value
    result = {}
    for key, item in value.items():
        if key in tree:
            if tree[key] is WHOLE:
                continue
            item = _drop(item, tree[key])
        result[key] = item
    return result
