"""Deterministic orchestration only: the order workflow and its helpers."""
