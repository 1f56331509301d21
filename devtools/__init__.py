"""Developer tooling: the local launcher (``bin/start``), the traffic simulator
and its ``flask simulate`` command.

Nothing under ``app/``, ``workers/`` or ``statemachine/`` imports this package:
a deployed web or worker process never loads it. ``flask simulate`` reaches the
Flask CLI through the ``flask.commands`` entry point (pyproject.toml), which
only the ``flask`` command loads.
"""
