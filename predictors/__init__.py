"""Predictors: per-category allocation policies built on `bucketing`, plus replay for prediction studies."""
