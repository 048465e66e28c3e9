"""The Lambda side of the layer: the one container of dependencies a cold start builds, and the glue that runs the
generic worker under Powertools (batch processing, idempotency, logs and metrics). Domain packages never import
it; function handlers do."""
