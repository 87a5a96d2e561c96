"""Shared plumbing of the Krousar services. Nothing service-specific lives here."""
