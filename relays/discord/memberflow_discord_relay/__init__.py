"""The memberflow Discord relay: a small always-on bot that forwards what Discord publishes only on its Gateway
(member joins, screening passes, messages, reactions) and /newsletter sign-ups to memberflow's
`POST /webhooks/discord`, signed with Ed25519, through a retry queue on disk (format: docs/discord-relay.md).

It is deployed on its own (relays/discord/Dockerfile), never in the Lambda layer, and imports nothing of memberflow.
"""

USER_AGENT = "memberflow-discord-relay/1.0"
