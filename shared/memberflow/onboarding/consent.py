"""Marketing consent for onboarding: the rules live in `memberflow.consent`, shared by every capability that adds
members."""

from memberflow.consent import (
    OPTED_OUT,
    PENDING,
    SUBSCRIBED,
    TRANSACTIONAL,
    UNSUBSCRIBED,
    ConsentFacts,
    Facts,
    receives_marketing,
    reopt_in_for_consent,
    status_for_new_member,
    upgrade_for_consent,
)

__all__ = [
    "OPTED_OUT",
    "PENDING",
    "SUBSCRIBED",
    "TRANSACTIONAL",
    "UNSUBSCRIBED",
    "ConsentFacts",
    "Facts",
    "receives_marketing",
    "reopt_in_for_consent",
    "status_for_new_member",
    "upgrade_for_consent",
]
