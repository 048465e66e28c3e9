"""Win-back: scheduled re-engagement of inactive members, with a holdout group that measures the lift."""
