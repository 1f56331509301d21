"""Operations: health, readiness, metrics, the API description and its page, the
wallboard page."""
