"""Autotuning: search spaces, measurement, cost model, records."""
