"""Escalation: member problems become Zendesk tickets once per thread, urgent safety reports reach the moderators
first, and members hear back where they asked when their ticket moves."""
