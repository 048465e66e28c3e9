"""Helpers shared by the test layers and the benchmark."""
