"""A run page's settings say the Azure auth and S3 request payer a run (and a sync pass)
used and where each came from -- the flag, the job, the environment, the default -- as they
say the S3 endpoint's (flag > job > environment > default: api/common._run_store_options).
Real runs: moto source, Azurite destination; the page from the monitor's app."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

import lakeshift
from lakeshift import StoreOptions
from lakeshift.web.app import create_app
from tests.helpers import next_second


def _settings_rows(db: str, run_id: int) -> dict[str, str]:
    page = TestClient(create_app(db)).get(f"/runs/{run_id}")
    assert page.status_code == 200, page.text
    return dict(re.findall(r"<tr><th>([^<]+)</th><td>([^<]*)</td></tr>",
                           page.text.split('class="settings"', 1)[1].split("</table>", 1)[0]))


def test_a_runs_page_says_its_azure_auth_and_request_payer_and_where_from(
        s3: Any, bucket: str, container: str, tmp_path: Path) -> None:
    s3.put_object(Bucket=bucket, Key="p/a.txt", Body=b"a")
    db = f"sqlite:///{tmp_path}/jobs.db"
    lakeshift.plan(f"s3://{bucket}/p/", f"az://{container}/d/", job="j", db=db,
                   store_options=StoreOptions(azure_auth="connection-string"))
    r = lakeshift.run(job="j", db=db,
                      store_environment=StoreOptions(azure_auth="key",
                                                     s3_request_payer="requester"))
    assert r.stats.copied == 1, r
    rows = _settings_rows(db, r.run_id)
    assert (rows["azure_auth"], rows["azure_auth_from"]) == ("connection-string", "job"), rows
    assert (rows["s3_request_payer"], rows["s3_request_payer_from"]) == \
        ("requester", "environment"), rows
    # A flag typed for the run (here at the default value) over the job's; no payer: none.
    s3.put_object(Bucket=bucket, Key="p/b.txt", Body=b"b")
    lakeshift.plan(f"s3://{bucket}/p/", f"az://{container}/d/", job="j", db=db, replan=True,
                   store_options=StoreOptions(azure_auth="connection-string"))
    r = lakeshift.run(job="j", db=db, store_options=StoreOptions(azure_auth="auto"),
                      store_given={"azure_auth"})
    assert r.stats.copied == 1, r
    rows = _settings_rows(db, r.run_id)
    assert (rows["azure_auth"], rows["azure_auth_from"]) == ("auto", "--azure-auth"), rows
    assert (rows["s3_request_payer"], rows["s3_request_payer_from"]) == ("—", "default"), rows


def test_a_sync_passs_page_says_them_too(s3: Any, bucket: str, container: str,
                                         tmp_path: Path) -> None:
    s3.put_object(Bucket=bucket, Key="p/a.txt", Body=b"a")
    next_second()
    db = f"sqlite:///{tmp_path}/jobs.db"
    # The pass that makes the job keeps what the environment set, as plan does: the job's.
    first = lakeshift.sync(f"s3://{bucket}/p/", f"az://{container}/d/", job="s", db=db,
                           lag="0", store_environment=StoreOptions(azure_auth="connection-string"))
    rows = _settings_rows(db, first.run.run_id)
    assert (rows["azure_auth"], rows["azure_auth_from"]) == ("connection-string", "job"), rows
    assert (rows["s3_request_payer"], rows["s3_request_payer_from"]) == ("—", "default"), rows
    # A later pass: the job's auth over the environment's; its payer (the job has none).
    s3.put_object(Bucket=bucket, Key="p/b.txt", Body=b"b")
    next_second()  # a pass's window ends on a whole second: b is before it
    later = lakeshift.sync(job="s", db=db, lag="0",
                           store_environment=StoreOptions(azure_auth="key",
                                                          s3_request_payer="requester"))
    assert later.run.stats.copied == 1, later
    rows = _settings_rows(db, later.run.run_id)
    assert (rows["azure_auth"], rows["azure_auth_from"]) == ("connection-string", "job"), rows
    assert (rows["s3_request_payer"], rows["s3_request_payer_from"]) == \
        ("requester", "environment"), rows
