"""The worker process type: RQ's drain jobs and the engine that applies events,
the housekeeper, the delivery process and the archiver thread.

Nothing here imports Flask; what the web shares with the workers is in core/.
"""
