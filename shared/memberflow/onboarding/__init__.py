"""Onboarding: a member who joins lands in Mailchimp with the right status, tags and consent (`join`, `consent`),
is welcomed once (`welcome`), nudged by a drip until they take part (`drip`, `activity`), and, on double opt-in,
welcomed once they confirm (`opt_in`). Someone who asks to be forgotten is removed everywhere and not re-added
without a fresh opt-in (`erasure`, `forgotten`). `consumer` is the handler table the onboarding worker runs."""
