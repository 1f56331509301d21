"""Developer tooling: the local launcher (``bin/start``, ``start.py``), the traffic
simulator and its ``flask simulate`` command, and the one way this machine runs
the Procfile's processes and a private redis-server (``service.py``,
``redis_server.py``), shared by ``bin/start``, the benchmarks and the
integration tests.

Nothing under ``app/``, ``workers/`` or ``statemachine/`` imports this package:
a deployed web or worker process never loads it. ``flask simulate`` reaches the
Flask CLI through the ``flask.commands`` entry point (pyproject.toml), which
only the ``flask`` command loads.
"""
