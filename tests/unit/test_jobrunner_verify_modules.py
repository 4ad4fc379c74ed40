"""`run` and `verify` are split along their seams (they were one module each, of 674 and 601
lines): engine/jobrunner*.py — the claim loop, a claimed partition as the run holds it, the
run's life around the loop — and engine/verify*.py — the planner, the per-object action,
the result and reports.  So are the records (reports.py: the monitor's are in
monitor_reports.py), scan (plan/scan.py: its calibration in plan/scan_calibration.py), the
web monitor (web/app.py: its paging in web/paging.py) and the S3 store (stores/s3/store.py:
its botocore side in stores/s3/boto_client.py), each of 521-569 lines before; and the lean
Azure Blob client (stores/azure/rest.py, 952 lines: its request formats in blob_format.py,
the Shared Key signer in shared_key.py, the error mapping in status.py, Entra ID tokens in
tokens.py); and the local store (stores/local/store.py, 901 lines: its walk in walk.py,
its reads in reads.py, its folder checks in folders.py).
Each module stays near the size DESIGN.md wants and says what it is for, and every name the
rest of the code and the tests import from the first module of each pair is still there,
the same object as in its new home."""

from __future__ import annotations

import ast
import typing
from pathlib import Path

import pytest

import lakeshift.engine as engine

ENGINE = Path(engine.__file__).parent
MODULES = sorted(p.name for pattern in ("jobrunner*.py", "verify*.py")
                 for p in ENGINE.glob(pattern))
PACKAGE = ENGINE.parent
#: The other modules split, under src/lakeshift/: each split module first, then the
#: modules that took a piece of it.
OTHER_SPLITS = ("reports.py", "monitor_reports.py", "plan/scan.py",
                "plan/scan_calibration.py", "web/app.py", "web/paging.py",
                "stores/s3/store.py", "stores/s3/boto_client.py",
                "stores/azure/rest.py", "stores/azure/blob_format.py",
                "stores/azure/shared_key.py", "stores/azure/status.py",
                "stores/azure/tokens.py", "stores/local/store.py",
                "stores/local/walk.py", "stores/local/reads.py", "stores/local/folders.py")


def test_run_and_verify_are_split_into_their_parts() -> None:
    assert set(MODULES) >= {"jobrunner.py", "jobrunner_partition.py", "jobrunner_run.py",
                            "verify.py", "verify_proof.py", "verify_report.py"}, MODULES


@pytest.mark.parametrize("name", MODULES)
def test_each_module_stays_near_the_size_the_design_wants(name: str) -> None:
    text = (ENGINE / name).read_text(encoding="utf-8")
    assert text.count("\n") <= 520, (name, text.count("\n"))
    assert ast.get_docstring(ast.parse(text)), name


def test_the_names_others_import_from_jobrunner_and_verify_are_still_there() -> None:
    from lakeshift.engine import (
        jobrunner,
        jobrunner_partition,
        jobrunner_run,
        verify,
        verify_proof,
        verify_report,
    )

    moved = {
        jobrunner_partition: ["ClaimedPartition", "PartitionMode", "ActivePartition"],
        jobrunner_run: ["count_remaining", "last_phase", "owner_id", "patiently",
                        "start_job_run", "sync_adf", "copy_settings", "job_deleted"],
        verify_report: ["Report", "VerifiedReport", "VerifyResult", "write_summary", "KINDS"],
        verify_proof: ["FORBIDDEN_AT_SOURCE", "Work", "multipart_part_sizes", "source_time"],
    }
    for home, names in moved.items():
        front = jobrunner if home.__name__.startswith("lakeshift.engine.jobrunner") else verify
        for name in names:
            assert getattr(front, name) is getattr(home, name), (front.__name__, name)
            assert name in front.__all__, (front.__name__, name)
    # Tests and bench/sync_scale.py patch ``jobrunner.open_store`` and ``jobrunner.run_job``:
    # the claim loop and the run look them up in jobrunner itself.
    for name in ("run_job", "claim_partitions"):
        assert getattr(jobrunner, name).__module__ == jobrunner.__name__, name
    for name in ("VerifyOptions", "verify_async", "verify_pair", "Pair"):
        assert hasattr(verify, name), name


@pytest.mark.parametrize("name", OTHER_SPLITS)
def test_each_module_of_the_other_splits_stays_near_the_size_the_design_wants(
        name: str) -> None:
    text = (PACKAGE / name).read_text(encoding="utf-8")
    assert text.count("\n") <= 520, (name, text.count("\n"))
    assert ast.get_docstring(ast.parse(text)), name


def test_the_names_moved_out_of_reports_the_web_app_and_the_stores_are_still_there() -> None:
    from lakeshift import model, monitor_reports, reports
    from lakeshift.stores.s3 import boto_client, store
    from lakeshift.web import app, paging

    # The monitor's records: reports' and lakeshift.model's names as before, still
    # reading as lakeshift.model's (repr, pickling by name, get_type_hints).
    for name in ("PartitionRunStatus", "ThroughputSample", "RunDetail", "FailurePage",
                 "JobMetrics"):
        record = getattr(monitor_reports, name)
        assert getattr(reports, name) is record and getattr(model, name) is record, name
        assert record.__module__ == "lakeshift.model", name
        assert typing.get_type_hints(record), name
    for name in ("PAGE", "MAX_PAGE", "int_param", "page_number", "pages"):
        assert getattr(app, name) is getattr(paging, name), name
    assert store.request_payer is boto_client.request_payer
    # The local store binds the moved names it uses: the same objects as in their homes.
    from lakeshift.stores.local import folders, reads
    from lakeshift.stores.local import store as local_store

    for name, home in (("_copy_file", reads), ("_read_file", reads), ("content_type", reads),
                       ("new_folder_parent", folders), ("not_writable", folders)):
        assert getattr(local_store, name) is getattr(home, name), name


def test_the_names_moved_out_of_the_azure_blob_client_are_still_there() -> None:
    """Other modules import each name from its new home; the tests (and anything else that
    imported it from azure/rest.py) still find it there, the same object."""
    from lakeshift.stores.azure import blob_format, rest, shared_key, status, tokens

    homes = {
        blob_format: ["API_VERSION", "PUT_FROM_URL_MAX", "SYNC_COPY_MAX", "DelegationKey",
                      "copy_from_url_headers", "put_from_url_headers", "quote_key",
                      "_blob_headers"],
        shared_key: ["canonical_resource", "shared_key_signature"],
        status: ["status_error"],
        tokens: ["BearerTokens", "GEN1_SCOPE", "STORAGE_SCOPE"],
    }
    for home, names in homes.items():
        for name in names:
            assert getattr(rest, name) is getattr(home, name), (home.__name__, name)
            assert name.startswith("_") or name in rest.__all__, name
    assert rest.LeanBlobClient.__module__ == rest.__name__
