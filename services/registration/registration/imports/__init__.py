"""Bulk import of a whole IDPoor round from CSV (format: docs/registration.md#import-format)."""
