"""Call-centre figures: ``GET /v1/stats``, from Redis or from the history database."""
