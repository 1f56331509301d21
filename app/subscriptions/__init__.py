"""Subscriptions: outbound webhooks of outcome records, their deliveries and replays."""
