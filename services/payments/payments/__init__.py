"""Disbursement runs, payment instructions, PSP statuses and reconciliation."""
