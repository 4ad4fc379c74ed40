"""What an S3 destination makes of a write S3 refused or stored otherwise: S3's refusal of
a body that does not have its Content-MD5 is an IntegrityError (the object is copied
again), and the multipart ETag rebuilt from the parts sent is S3's formula."""

from __future__ import annotations

import hashlib
import os

import pytest
from botocore.exceptions import ClientError

from lakeshift.errors import IntegrityError
from lakeshift.stores.s3.boto_client import boto_error
from lakeshift.stores.s3.uploads import PartMD5s


@pytest.mark.parametrize("code", ["BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch"])
def test_a_body_s3_refused_as_damaged_is_an_integrity_error(code: str) -> None:
    e = ClientError({"Error": {"Code": code, "Message": "..."},
                     "ResponseMetadata": {"HTTPStatusCode": 400}}, "PutObject")
    err = boto_error(e, "s3://b/k")
    assert isinstance(err, IntegrityError) and "changed in transit" in str(err)


def test_part_md5s_rebuild_the_etag_whatever_the_writes() -> None:
    part = 5 * 1024 * 1024
    data = os.urandom(2 * part + 7)
    parts = PartMD5s(part)
    for start in range(0, len(data), 3 * 1024 * 1024 + 1):  # writes across part edges
        parts.update(data[start:start + 3 * 1024 * 1024 + 1])
    digests = b"".join(hashlib.md5(data[i:i + part]).digest()
                       for i in range(0, len(data), part))
    assert parts.etag(len(data)) == f"{hashlib.md5(digests).hexdigest()}-3"
    one = PartMD5s(part)
    one.update(data[:100])
    assert one.etag(100) == hashlib.md5(data[:100]).hexdigest()
    # Exactly one part's bytes: obstore's writer makes a multipart upload of one part.
    full = PartMD5s(part)
    full.update(data[:part])
    inner = hashlib.md5(data[:part]).digest()
    assert full.etag(part) == f"{hashlib.md5(inner).hexdigest()}-1"
