"""Executors that run calls with labels chosen by a predictor (local backend and Work Queue)."""
