"""The parts of lakeshift.scale that need no cluster: --dask parsing, the fleet's share of
the caps, progress from the DB's counters, and lakeshift without Dask installed."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lakeshift.engine.events import (
    BytesMoved,
    Event,
    Listed,
    ListingDone,
    ObjectDone,
)
from lakeshift.engine.pipeline import CopyOptions
from lakeshift.errors import UsageError
from lakeshift.scale.cluster import ClusterSpec
from lakeshift.scale.driver import ProgressFromDB, fleet_share, refuse_sqlite


def test_dask_spec_is_a_scheduler_address_or_local_n() -> None:
    assert ClusterSpec.parse("tcp://10.0.0.5:8786") == ClusterSpec(address="tcp://10.0.0.5:8786")
    assert ClusterSpec.parse("local:3") == ClusterSpec(local_workers=3)
    assert str(ClusterSpec.parse("local:3")) == "local:3"
    for bad in ("local:0", "local:x", "10.0.0.5:8786", "http://h:8786", "tcp://"):
        with pytest.raises(UsageError, match="--dask"):
            ClusterSpec.parse(bad)


def test_sqlite_is_refused_with_dask() -> None:
    with pytest.raises(UsageError, match="PostgreSQL"):
        refuse_sqlite("sqlite:///x.db", "local:2")
    refuse_sqlite("postgresql://u@h/db", "local:2")


def test_each_worker_gets_an_equal_share_of_the_fleet_caps() -> None:
    opts = CopyOptions(concurrency=16, max_requests_per_second=100.0, max_bandwidth=8e6)
    share = fleet_share(opts, 4)
    assert (share.max_requests_per_second, share.max_bandwidth) == (25.0, 2e6)
    assert share.concurrency == 16  # per worker, like --batch-count
    assert fleet_share(CopyOptions(), 4).max_requests_per_second is None


def test_progress_from_the_db_counts_each_object_once_and_never_goes_back() -> None:
    # The counters are the run's own (its partition-run records): they start at zero.
    seen: list[Event] = []
    p = ProgressFromDB([seen.append])
    p.update({"listed": 4, "copied": 2, "bytes": 40})
    p.update({"listed": 9, "copied": 7, "skipped": 1, "failed_objects": 1, "bytes": 90})
    # Should one be read back lower, nothing is shown twice.
    p.update({"listed": 8, "copied": 6, "skipped": 1, "failed_objects": 1, "bytes": 80})
    p.update({"listed": 10, "copied": 8, "skipped": 1, "failed_objects": 1, "bytes": 100,
              "pending": 0, "running": 1})
    assert not [e for e in seen if isinstance(e, ListingDone)]
    p.update({"listed": 10, "copied": 8, "skipped": 1, "failed_objects": 1, "bytes": 100,
              "pending": 0, "running": 0})
    assert [e for e in seen if isinstance(e, ListingDone)] == [ListingDone()]
    done = [e.outcome for e in seen if isinstance(e, ObjectDone)]
    assert sorted(done) == ["copied"] * 8 + ["failed", "skipped"]
    assert sum(e.count for e in seen if isinstance(e, Listed)) == 10
    assert sum(e.nbytes for e in seen if isinstance(e, BytesMoved)) == 100


def test_a_display_gets_each_read_of_the_db_as_one_batch() -> None:
    import io

    from lakeshift.cli.progress import PlainProgress

    out = io.StringIO()
    display = PlainProgress(out, interval=0.0)
    ProgressFromDB([display]).update({"listed": 4, "copied": 3, "skipped": 1, "bytes": 30})
    assert out.getvalue().startswith("progress: 4/4+ objects, 30 B ("), out.getvalue()
    assert len(out.getvalue().splitlines()) == 1


def test_lakeshift_works_without_dask_and_dask_says_which_extra() -> None:
    code = (
        "import sys; sys.modules['distributed'] = None; sys.modules['dask'] = None\n"
        "import lakeshift, lakeshift.cli.app\n"
        "from lakeshift.scale.cluster import ClusterSpec, open_fleet\n"
        "try:\n"
        "    open_fleet(ClusterSpec.parse('local:2'))\n"
        "except lakeshift.UsageError as e:\n"
        "    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert "pip install 'lakeshift[dask]'" in out.stdout


def test_what_a_worker_is_sent_shows_no_db_password() -> None:
    import pickle

    from lakeshift.control.db import display_url
    from lakeshift.scale.worker import WorkerAssignment
    from lakeshift.stores.base import StoreOptions

    url = "postgresql://lake:s3cr3t-pw@db.example:5432/lakeshift"
    a = WorkerAssignment(url, display_url(url), "j", 7, 4, CopyOptions(), StoreOptions(), 60.0,
                         5.0)
    assert "s3cr3t-pw" not in repr(a) and "s3cr3t-pw" not in str(a)
    assert "db.example" in repr(a)
    assert pickle.loads(pickle.dumps(a)).db_url == url  # the worker still gets it
