"""The escalation rules, as data the community manager edits (`escalation-rules.json` beside this module, or the
file `ESCALATION_RULES_FILE` names): which messages, reactions, flags and explicit requests become tickets, with
which category, priority, tags and Zendesk group, and the messages that tell a member their ticket moved.

A bad file fails loudly when it is loaded, naming the rule and the field: `RulesError`."""

from __future__ import annotations

import json
import re
import string
from collections.abc import Iterable
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, Field, ValidationError, field_validator, model_validator

from memberflow.schema import Model

DEFAULT_RULES_FILE = Path(__file__).with_name("escalation-rules.json")
Priority = Literal["urgent", "high", "normal", "low"]
PRIORITY_ORDER = {"urgent": 0, "high": 1, "normal": 2, "low": 3}
STATUSES = ("new", "open", "pending", "hold", "solved", "closed")
TEMPLATE_FIELDS = frozenset({"ticket_id", "status", "name", "category"})
"""What a member message template may use: `{ticket_id}`, `{status}`, `{name}` (the member's), `{category}`."""
SAFETY = "safety"
TAG = re.compile(r"[a-z0-9_\-/:]{1,80}")


class RulesError(ValueError):
    """The rules file cannot be used: the message names the file, the rule and the field."""


class Rule(Model):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_\-]*$")
    category: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_\-]*$")
    priority: Priority
    tags: tuple[str, ...] = ()
    group_id: int | None = Field(default=None, ge=1)
    keywords: tuple[str, ...] = ()
    """Whole words or phrases, matched case-insensitively in a member's message."""
    patterns: tuple[str, ...] = ()
    """Regular expressions (Python syntax), matched case-insensitively in a member's message."""
    reaction: str | None = Field(default=None, pattern=r"^[a-z0-9_+\-']+$")
    """A Slack reaction (emoji name without colons, e.g. `ticket`) by which a moderator escalates a message."""
    reactors: tuple[str, ...] = ()
    """Slack user ids whose reaction counts (the moderators); empty: anyone's."""
    discourse_flag: bool = False
    """A post flagged on Discourse is escalated with this rule."""
    notify_moderators: bool = False
    """Post to the moderators' channel at once, before any ticket work (always on for the safety category)."""

    @field_validator("tags")
    @classmethod
    def _tags(cls, tags: tuple[str, ...]) -> tuple[str, ...]:
        for position, tag in enumerate(tags):
            if not TAG.fullmatch(tag):
                raise ValueError(f"tags[{position}] {tag[:40]!r}: lower-case letters, digits, _ - / : only")
        return tags

    @field_validator("keywords")
    @classmethod
    def _keywords(cls, keywords: tuple[str, ...]) -> tuple[str, ...]:
        for position, keyword in enumerate(keywords):
            if not keyword.strip():
                raise ValueError(f"keywords[{position}] is empty")
        return keywords

    @field_validator("patterns")
    @classmethod
    def _patterns(cls, patterns: tuple[str, ...]) -> tuple[str, ...]:
        for position, pattern in enumerate(patterns):
            try:
                re.compile(pattern)
            except re.error as error:
                problem = f"patterns[{position}] {pattern[:60]!r} is not a regular expression: {error}"
                raise ValueError(problem) from None
        return patterns

    @model_validator(mode="after")
    def _consistent(self) -> Rule:
        if self.category == SAFETY and self.priority != "urgent":
            raise ValueError("priority: a safety rule is urgent")
        return self

    @property
    def alerts_moderators(self) -> bool:
        return self.notify_moderators or self.category == SAFETY

    @cached_property
    def _matcher(self) -> re.Pattern[str] | None:
        parts = [rf"(?<!\w){re.escape(keyword.strip())}(?!\w)" for keyword in self.keywords]
        parts += [f"(?:{pattern})" for pattern in self.patterns]
        return re.compile("|".join(parts), re.IGNORECASE) if parts else None

    def matches_text(self, text: str) -> bool:
        return self._matcher is not None and self._matcher.search(text) is not None


class Templates(Model):
    """What a member is told when their ticket reaches a status; a status without a template is not announced."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    received: str = "Thanks {name}, we have passed this on to our support team (ticket #{ticket_id})."
    open: str | None = None
    pending: str | None = None
    hold: str | None = None
    solved: str | None = "Good news {name}: your ticket #{ticket_id} is solved. Reply here if anything is left."
    closed: str | None = None
    moderators: str = ":rotating_light: Safety report ({category}) from {name}: {permalink}"

    @model_validator(mode="after")
    def _placeholders(self) -> Templates:
        for name, text in self.model_dump().items():
            if text is None:
                continue
            allowed = TEMPLATE_FIELDS | ({"permalink"} if name == "moderators" else set())
            try:
                used = {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}
            except ValueError as error:
                raise ValueError(f"{name}: {error}") from None
            unknown = sorted(used - allowed)
            if unknown:
                raise ValueError(f"{name}: unknown placeholder {{{unknown[0]}}}; use {sorted(allowed)}")
        return self

    def for_status(self, status: str) -> str | None:
        return getattr(self, status, None) if status in STATUSES else None


class EscalationRules(Model):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal[1]
    rules: tuple[Rule, ...] = Field(min_length=1)
    templates: Templates = Field(default_factory=Templates)

    @model_validator(mode="after")
    def _unique(self) -> EscalationRules:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.name in seen:
                raise ValueError(f"rule {rule.name!r} is defined twice")
            seen.add(rule.name)
        return self

    def _ordered(self) -> Iterable[Rule]:
        """Most urgent first, then in file order: a message that is both a billing question and a threat is a
        safety report."""
        return sorted(self.rules, key=lambda rule: PRIORITY_ORDER[rule.priority])

    def for_text(self, text: str) -> Rule | None:
        return next((rule for rule in self._ordered() if rule.matches_text(text)), None)

    def for_reaction(self, reaction: str, by: str = "") -> Rule | None:
        # Slack names skin-tone variants `thumbsup::skin-tone-2`: the base emoji counts.
        base = reaction.split("::", 1)[0]
        return next(
            (rule for rule in self._ordered() if rule.reaction == base and (not rule.reactors or by in rule.reactors)),
            None,
        )

    def for_flag(self) -> Rule | None:
        return next((rule for rule in self._ordered() if rule.discourse_flag), None)

    def for_category(self, category: str) -> Rule | None:
        return next((rule for rule in self._ordered() if rule.category == category), None)

    def named(self, name: str) -> Rule | None:
        return next((rule for rule in self.rules if rule.name == name), None)


def parse_rules(document: Any, where: str = "escalation rules") -> EscalationRules:
    try:
        return EscalationRules.model_validate(document)
    except ValidationError as error:
        raise RulesError(f"{where}: " + "; ".join(_describe(document, e) for e in error.errors())) from None


def load_rules(path: str | Path | None = None) -> EscalationRules:
    """The rules file, validated; `RulesError` names the file, rule and field of the first problems."""
    file = Path(path) if path else DEFAULT_RULES_FILE
    try:
        document = json.loads(file.read_text(encoding="utf-8"))
    except OSError as error:
        raise RulesError(f"{file}: cannot be read: {error.strerror}") from None
    except ValueError as error:
        raise RulesError(f"{file}: not valid JSON: {error}") from None
    return parse_rules(document, str(file))


def _describe(document: Any, error: Any) -> str:
    location = list(error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    if len(location) >= 2 and location[0] == "rules" and isinstance(location[1], int):
        index = location[1]
        rules = document.get("rules") if isinstance(document, dict) else None
        rule = rules[index] if isinstance(rules, list) and index < len(rules) else None
        name = rule.get("name") if isinstance(rule, dict) else None
        label = f"rule {name!r} (rules[{index}])" if isinstance(name, str) else f"rules[{index}]"
        field = ".".join(str(part) for part in location[2:])
        return f"{label}, field {field!r}: {message}" if field else f"{label}: {message}"
    field = ".".join(str(part) for part in location) or "the file"
    return f"field {field!r}: {message}"
