"""Live call events and alerts as Server-Sent Events: ``GET /v1/events/stream``."""
