"""Local stand-ins for the external services memberflow talks to.

Each sandbox is a `base.SandboxApp` (routes and error wording) run by a `base.SandboxServer`.
"""
