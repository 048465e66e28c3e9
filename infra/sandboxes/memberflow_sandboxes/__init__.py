"""Local stand-ins for the external services memberflow talks to."""
