"""IDPoor household registry: households, members, scores, equity cards."""
