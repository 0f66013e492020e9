"""The HTTP client with the embedded API (issue 3)."""
