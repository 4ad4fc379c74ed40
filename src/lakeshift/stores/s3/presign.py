"""Presigned S3 GET URLs (Signature Version 4, query-string form), for a destination
service that reads the source itself (server-side copy, ``--copy-mode``).

Built here rather than through botocore's presigner so that one URL per request costs no
client creation and no event hooks; ``tests/unit/test_presign.py`` checks it against
botocore's presigner, byte for byte, on the same inputs.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit

ALGORITHM = "AWS4-HMAC-SHA256"


def _quote(text: str, safe: str = "-_.~") -> str:
    return quote(text, safe=safe)


def presigned_get(endpoint: str, bucket: str, key: str, region: str, access_key: str,
                  secret_key: str, token: str | None, expires_in: int,
                  now: datetime | None = None, path_style: bool = True) -> str:
    """A GET of ``bucket``/``key`` at ``endpoint`` (``https://s3.REGION.amazonaws.com`` or
    a custom one), valid for ``expires_in`` seconds from ``now``.

    ``path_style`` puts the bucket in the path (custom endpoints); otherwise in the host
    (``BUCKET.s3.REGION.amazonaws.com``)."""
    if not 1 <= expires_in <= 7 * 24 * 3600:
        raise ValueError("a presigned URL lives between 1 s and 7 days")
    when = (now or datetime.now(UTC)).astimezone(UTC)
    amz_date, day = when.strftime("%Y%m%dT%H%M%SZ"), when.strftime("%Y%m%d")
    parts = urlsplit(endpoint)
    scheme, host = parts.scheme, parts.netloc
    base_path = parts.path.rstrip("/")
    key_path = _quote(key, safe="/-_.~")
    if path_style:
        path = f"{base_path}/{_quote(bucket)}/{key_path}"
    else:
        host = f"{bucket}.{host}"
        path = f"{base_path}/{key_path}"
    scope = f"{day}/{region}/s3/aws4_request"
    query = {"X-Amz-Algorithm": ALGORITHM, "X-Amz-Credential": f"{access_key}/{scope}",
             "X-Amz-Date": amz_date, "X-Amz-Expires": str(expires_in),
             "X-Amz-SignedHeaders": "host"}
    if token:
        query["X-Amz-Security-Token"] = token
    canonical_query = "&".join(f"{_quote(k)}={_quote(v)}" for k, v in sorted(query.items()))
    canonical = "\n".join(["GET", path, canonical_query, f"host:{host}", "", "host",
                           "UNSIGNED-PAYLOAD"])
    to_sign = "\n".join([ALGORITHM, amz_date, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    signing_key = f"AWS4{secret_key}".encode()
    for part in (day, region, "s3", "aws4_request"):
        signing_key = hmac.new(signing_key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(signing_key, to_sign.encode(), hashlib.sha256).hexdigest()
    return f"{scheme}://{host}{path}?{canonical_query}&X-Amz-Signature={signature}"
