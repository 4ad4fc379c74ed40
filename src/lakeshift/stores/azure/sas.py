"""Service SAS for one blob, signed with the account key: the read-only URL a destination
service reads a blob through in a server-side copy (``--copy-mode``).

The string to sign is the service SAS of versions 2020-12-06 and later (Azure's "Create a
service SAS"); ``tests/unit/test_blob_sas.py`` checks it against azure-storage-blob's
``generate_blob_sas``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime
from urllib.parse import quote

from lakeshift.stores.azure.rest import API_VERSION


def _when(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def blob_sas(account: str, key: str, container: str, blob: str, permissions: str,
             start: datetime, expiry: datetime, version: str = API_VERSION) -> str:
    """The query string (no leading ``?``) of a service SAS for ``container/blob``."""
    st, se = _when(start), _when(expiry)
    to_sign = "\n".join([permissions, st, se, f"/blob/{account}/{container}/{blob}",
                         "",  # signed identifier (no stored access policy)
                         "", "",  # signed IP, signed protocol
                         version, "b",
                         "", "",  # snapshot time, encryption scope
                         "", "", "", "", ""])  # rscc, rscd, rsce, rscl, rsct
    sig = base64.b64encode(hmac.new(base64.b64decode(key), to_sign.encode(),
                                    hashlib.sha256).digest()).decode()
    fields = {"st": st, "se": se, "sp": permissions, "sv": version, "sr": "b", "sig": sig}
    return "&".join(f"{k}={quote(v, safe='')}" for k, v in fields.items())
