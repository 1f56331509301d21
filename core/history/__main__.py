"""``python -m core.history upgrade``: migrate the history database (the Procfile's
``release`` process). Without DATABASE_URL there is nothing to do: says so, exits 0.
"""

from __future__ import annotations

import sys

from core.history.database import create_engine, current_revision, upgrade
from core.settings import ConfigError, Settings

USAGE = "usage: python -m core.history upgrade"


def main(argv: list[str]) -> int:
    if argv != ["upgrade"]:
        print(USAGE, file=sys.stderr)
        return 2
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 1
    if not settings.database_url:
        print("DATABASE_URL is not set: no call history, nothing to migrate")
        return 0
    engine = create_engine(settings.database_url, role="release")
    upgrade(engine)
    print(f"history database at revision {current_revision(engine)}")
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
