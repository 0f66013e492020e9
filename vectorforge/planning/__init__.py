"""Capacity planning and cost models (a later issue)."""
