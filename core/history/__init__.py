"""Call history in a SQL database: every outcome revision, kept for months.

Redis holds a call for ``RETENTION_SECONDS``; with ``DATABASE_URL`` set, the
archiver (a thread of each events worker) copies every outcome revision from
the outcome streams into PostgreSQL or SQLite, so calls can be searched,
exported and counted long after Redis has let them go.

    records.py   pure functions over outcome records (rows, extensions, times)
    schema.py    the tables (SQLAlchemy Core)
    database.py  engines, migrations (Alembic, configured here, no alembic.ini)
    writer.py    the archive's writes: idempotent upserts with the cursor, retention
    archive.py   the passes that follow the outcome streams, backfill, lag
                 (workers/archiver.py runs them in a thread of each events worker)
    search.py    the reads: call search with keyset paging, the stats window
"""
