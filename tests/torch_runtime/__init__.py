"""Helpers that run an exported schedule table in PyTorch across processes (tests only)."""
