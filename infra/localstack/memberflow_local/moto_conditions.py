"""DynamoDB condition expressions in moto are split into tokens once per distinct expression.

moto lexes every condition and filter expression character by character with a list of regular expressions,
on every call; our adapters send a few dozen distinct expressions over and over. The tokens depend on the
expression's text alone (names and values are looked up later), so `install()` keeps them (a bounded cache) and
hands each call fresh nodes, since the later stages of moto's parser build on them.
"""

from __future__ import annotations

import functools
from collections import deque
from typing import Any

LEXED_EXPRESSIONS = 1024


def install() -> None:
    """Patch moto's condition expression lexer once per process (idempotent)."""
    from moto.dynamodb.comparisons import ConditionExpressionParser

    if getattr(ConditionExpressionParser._lex_condition_expression, "_cached", False):
        return
    lex = ConditionExpressionParser._lex_condition_expression

    @functools.lru_cache(maxsize=LEXED_EXPRESSIONS)
    def tokens(expression: str) -> tuple[tuple[Any, Any, str, Any], ...]:
        parser = ConditionExpressionParser(expression, None, None)
        return tuple((n.nonterminal, n.kind, n.text, n.value) for n in lex(parser))

    def lexed(self: Any) -> deque[Any]:
        if not isinstance(self.condition_expression, str):
            return lex(self)
        return deque(
            self.Node(nonterminal=nonterminal, kind=kind, text=text, value=value, children=[])
            for nonterminal, kind, text, value in tokens(self.condition_expression)
        )

    lexed._cached = True  # type: ignore[attr-defined]
    ConditionExpressionParser._lex_condition_expression = lexed  # type: ignore[method-assign]
