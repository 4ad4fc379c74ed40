"""`--max-requests-per-second` as a user sees it: the cap holds from the first request.

The request-rate bucket used to start full with a second's worth of requests, so a cap of
20 a second let about 40 GETs reach the endpoint in the copy's first second.  Here `copy`
reads from moto through a loopback proxy that notes when each request arrives, and no
second holds more GETs of objects than the cap plus a tenth (the bucket's burst), and one.  (Only
the GETs are counted: the start-up check before them is not paced.)  Upper bounds only: a
slow machine sends fewer, never more."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import servers
from tests.e2e.cli import lakeshift
from tests.faultproxy import ArrivalsProxy


@pytest.fixture
def proxy(moto: servers.Server) -> Iterator[ArrivalsProxy]:
    p = ArrivalsProxy(f"http://127.0.0.1:{moto.port}")
    yield p
    p.stop()


def test_the_request_cap_holds_over_every_second_from_the_first_request(
        s3: Any, bucket: str, s3_env: dict[str, str], proxy: ArrivalsProxy,
        tmp_path: Path) -> None:
    objects, rate = 70, 20
    for i in range(objects):
        s3.put_object(Bucket=bucket, Key=f"in/{i:03}.txt", Body=f"object {i}".encode())
    env = {**servers.clean_env(), **s3_env, "AWS_ENDPOINT_URL": proxy.url,
           "HOME": str(tmp_path / "home"), "TMPDIR": str(tmp_path)}
    dst = tmp_path / "dst"
    p = lakeshift("copy", f"s3://{bucket}/in/", str(dst), "--max-requests-per-second",
                  str(rate), "--progress", "none", env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    assert len(list(dst.iterdir())) == objects
    assert (dst / "042.txt").read_text() == "object 42"
    gets = sorted(t for t, kind in proxy.arrivals if kind == "data")
    assert len(gets) == objects, proxy.arrivals
    # Every window of one second that starts at a GET (the fullest ones do): at most the
    # burst (a tenth of the rate, there after the listing) and a second's worth, and one
    # for the arrivals' jitter at the proxy (the bucket that started full sent 40).
    most = max(sum(1 for u in gets[i:] if u - t < 1.0) for i, t in enumerate(gets))
    assert most <= rate * 1.1 + 1, (f"{most} GETs in one second under a cap of {rate} a second "
                                f"(the first at {gets[0] - proxy.arrivals[0][0]:.2f} s)")
