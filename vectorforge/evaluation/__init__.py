"""IR metrics, gold sets, continuous evaluation (a later issue)."""
