"""The base of every pydantic model in the layer.

A model's validator is built the first time it validates, not when its module is imported: a function imports many
models (every event type, source and settings class) and validates a handful, and building the others would be
paid by every cold start (about 1 ms a model)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    model_config = ConfigDict(defer_build=True)
