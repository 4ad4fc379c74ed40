"""The botocore side of an S3 store: its client, built on first use (a copy with credentials
from the environment never imports botocore: pinned by a CLI copy's import log,
tests/integration/test_multipart_proofs.py), scan's HEAD, botocore's errors mapped into
lakeshift's tree, and ``--s3-request-payer``.  ``S3Store._call`` sends an operation
through the client (bucket settings, deletes, bucket creation, the multipart clean-up).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lakeshift.errors import (
    ArchivedError,
    AuthError,
    ForbiddenError,
    IntegrityError,
    LakeshiftError,
    MissingContainerError,
    NotFoundError,
    ThrottledError,
    TransientError,
    UsageError,
)
from lakeshift.redact import redact
from lakeshift.stores.base import StoreOptions
from lakeshift.stores.obstore_common import ARCHIVED_CODES, archived_message
from lakeshift.stores.s3 import auth as aws_auth

REQUEST_PAYER_CHOICES = ("requester",)


def request_payer(value: str | None) -> bool:
    """--s3-request-payer: "requester" or nothing."""
    if value in (None, ""):
        return False
    if value not in REQUEST_PAYER_CHOICES:
        raise UsageError(f"--s3-request-payer {value!r}: the only value is requester")
    return True


def new_client(settings: aws_auth.AwsSettings, options: StoreOptions,
               pays_requests: bool) -> Any:
    """The store's botocore S3 client: one attempt per request (lakeshift retries), four
    connections, path-style on a custom endpoint, unsigned when anonymous."""
    from botocore.config import Config

    cfg = Config(retries={"max_attempts": 1, "mode": "standard"},
                 s3={"addressing_style": "path" if settings.endpoint else "auto"},
                 max_pool_connections=4, connect_timeout=10, read_timeout=120)
    kw: dict[str, Any] = {"region_name": settings.region, "config": cfg}
    if settings.endpoint:
        kw["endpoint_url"] = settings.endpoint
    if settings.credentials is None:
        from botocore import UNSIGNED

        kw["config"] = cfg.merge(Config(signature_version=UNSIGNED))
    # LastModified without dateutil's general parser (half a listing's client CPU).
    from lakeshift.stores.s3 import timestamps

    session = settings.session
    if session is None:
        # The credentials came from the environment without botocore: the same ones
        # (static), given to the client as they are.
        session = aws_auth.new_session(options)
        frozen = settings.credentials.get_frozen_credentials()
        kw.update(aws_access_key_id=frozen.access_key,
                  aws_secret_access_key=frozen.secret_key,
                  aws_session_token=frozen.token)
    timestamps.install(session)
    # The session's resolver already had the instance-metadata provider removed.
    client = session.create_client("s3", **kw)
    if pays_requests:
        # Every request, whatever the operation (ListObjectsV2, HEAD, GET, the bucket
        # settings): added before signing, so it is signed with the rest.
        client.meta.events.register("before-sign.s3", _add_request_payer)
    return client


def _add_request_payer(request: Any, **_: Any) -> None:
    request.headers["x-amz-request-payer"] = "requester"


def inspect_head(client: Any, bucket: str, key: str,
                 call: Callable[[str, dict[str, Any], str], Any]) -> dict[str, Any] | None:
    """scan's HEAD of ``key`` (``S3Store.inspect``), None for an SSE-C object.  S3 refuses
    a HEAD of an SSE-C object without its key with a bare 400 (a HEAD has no body), which
    says nothing by itself: a one-byte GET then names the cause, ``InvalidRequest``
    "...stored using a form of Server Side Encryption...".  Only that is SSE-C; any other
    400 is the error it is (sent again through ``call``, which maps it)."""
    import botocore.exceptions as bex

    def sse_c_refusal() -> bool:
        try:
            client.get_object(Bucket=bucket, Key=key, Range="bytes=0-0")
        except bex.ClientError as e:
            err = e.response.get("Error", {})
            return str(err.get("Code")) == "InvalidRequest" and \
                "server side encryption" in str(err.get("Message", "")).lower()
        return False

    try:
        return dict(client.head_object(Bucket=bucket, Key=key))
    except bex.ClientError as e:
        status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status == 400 and sse_c_refusal():
            return None
    return dict(call("head_object", {"Bucket": bucket, "Key": key}, key))


def boto_error(e: Any, what: str) -> LakeshiftError:
    err = e.response.get("Error", {})
    code = str(err.get("Code", ""))
    status = int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    if code in ARCHIVED_CODES:
        return ArchivedError(archived_message(what))
    if code in ("BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch"):
        # The service refused a body that does not have the Content-MD5 (or payload hash)
        # sent with it: damaged on the way, the object is copied again.
        return IntegrityError(f"{what}: S3 refused the bytes it received ({code}): they "
                              "differ from the bytes sent (changed in transit)")
    if code in ("NoSuchBucket",):
        return MissingContainerError(f"{what}: bucket does not exist: create it or fix the URL")
    if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken"):
        return AuthError(f"{what}: AWS credentials rejected ({code}): check AWS_ACCESS_KEY_ID / "
                         "AWS_SECRET_ACCESS_KEY or the profile")
    if status == 404 or code in ("NoSuchKey", "404", "NotFound"):
        if what.endswith("/") or (code == "404" and "/" not in what.split("://", 1)[1]):
            return MissingContainerError(f"{what}: bucket does not exist: create it or fix "
                                         "the URL")
        return NotFoundError(f"{what}: not found")
    if status == 403 or code == "AccessDenied":
        return ForbiddenError(f"{what}: access denied ({code or status})")
    if status in (429, 503) or code in ("SlowDown", "Throttling", "RequestLimitExceeded"):
        return ThrottledError(f"{what}: throttled ({code or status})")
    if status >= 500:
        return TransientError(f"{what}: server error {status}" + (f" ({code})" if code else ""))
    return LakeshiftError(redact(f"{what}: {code} {err.get('Message', '')}"))
