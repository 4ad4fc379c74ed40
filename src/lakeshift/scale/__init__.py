"""Scale-out on Dask: many worker processes, one PostgreSQL control DB (docs/dask.md).

The driver (``lakeshift run|sync --dask``) starts the run row and submits one long-lived
task per Dask worker; each task runs the same claim loop as a ``lakeshift run`` process
(``engine.jobrunner.claim_partitions``) with its own store clients, built from the
picklable configs it was sent.  The control DB is the only shared state: leases, cursors,
counters and records.  Dask is imported here only, and lazily: ``lakeshift`` works without
the ``lakeshift[dask]`` extra.
"""
