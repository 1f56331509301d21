"""Outbound webhooks: subscriptions' records, the circuit breaker, signing, the URL
guard, one HTTP attempt, and turning outcome records into deliveries."""
