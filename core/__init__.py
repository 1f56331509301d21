"""What the web and the workers share: settings, logs, the Redis store, the SQL
history and the records of outbound deliveries.

Nothing here imports Flask or RQ's worker: both process types import from here.
"""
