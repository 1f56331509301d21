"""Webhook intake: ``POST /webhooks/primevox/<token>``, its fast path, and the
schemas that turn a PrimeVOX body into a typed event."""
