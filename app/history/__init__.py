"""Call history: ``GET /v1/calls`` over the SQL archive, as JSON or CSV."""
