"""memberflow: serverless automations for community teams (shared Lambda layer)."""

__version__ = "0.1.0"
