"""Embedding fine-tuning (a later issue)."""
