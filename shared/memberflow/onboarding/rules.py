"""Onboarding's configuration, as the domain sees it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WelcomeJourney:
    journey_id: str
    step_id: str


@dataclass(frozen=True)
class OnboardingRules:
    list_id: str
    welcome_journey: WelcomeJourney
    drip_step_days: tuple[int, ...] = (1, 3, 7)
