"""Late interaction: MaxSim, PLAID, ColPali (a later issue)."""
