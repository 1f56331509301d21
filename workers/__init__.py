"""The worker side: RQ jobs, the engine that applies events, and the Redis store.

Nothing here imports Flask: the web process imports from us, never the reverse.
"""
