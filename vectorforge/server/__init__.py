"""The FastAPI server (issue 3)."""
