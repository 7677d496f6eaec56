"""Bucketing algorithms: turn the history of one resource of one category into buckets (upper bound, probability)."""
