"""Outcome records: the page (``GET /v1/outcomes``) and the resumable stream."""
