"""The `memberflow` command: the local stack, and the member trace of a local or deployed stack. An operator's
tool, not part of the Lambda layer."""
