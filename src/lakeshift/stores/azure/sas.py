"""SAS for one blob: the read-only URL a destination service reads a blob through in a
server-side copy (``--copy-mode``).  Signed with the account key (a service SAS) or, when
the credential is an Entra ID token, with a user delegation key (a user-delegation SAS;
the key from Get User Delegation Key).

The strings to sign are those of versions 2020-12-06 and later (Azure's "Create a service
SAS", "Create a user delegation SAS"); ``tests/unit/test_blob_sas.py`` checks both against
azure-storage-blob's ``generate_blob_sas``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime
from urllib.parse import quote

from lakeshift.stores.azure.blob_format import API_VERSION, DelegationKey


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


def user_delegation_string_to_sign(account: str, key: DelegationKey, container: str,
                                   blob: str, permissions: str, st: str, se: str,
                                   version: str) -> str:
    """What a user-delegation SAS of versions 2020-12-06 to 2025-05-05 signs (the later
    versions add the delegated user's tenant and object IDs and signed request headers)."""
    return "\n".join([permissions, st, se, f"/blob/{account}/{container}/{blob}",
                      key.oid, key.tid, key.start, key.expiry, key.service, key.version,
                      "", "", "",  # authorized / unauthorized object IDs, correlation ID
                      "", "",  # signed IP, signed protocol
                      version, "b",
                      "", "",  # snapshot time, encryption scope
                      "", "", "", "", ""])  # rscc, rscd, rsce, rscl, rsct


def user_delegation_sas(account: str, key: DelegationKey, container: str, blob: str,
                        permissions: str, start: datetime, expiry: datetime,
                        version: str = API_VERSION) -> str:
    """The query string (no leading ``?``) of a user-delegation SAS for ``container/blob``."""
    st, se = _when(start), _when(expiry)
    to_sign = user_delegation_string_to_sign(account, key, container, blob, permissions, st,
                                             se, version)
    sig = base64.b64encode(hmac.new(base64.b64decode(key.value), to_sign.encode(),
                                    hashlib.sha256).digest()).decode()
    fields = {"st": st, "se": se, "sp": permissions, "sv": version, "sr": "b",
              "skoid": key.oid, "sktid": key.tid, "skt": key.start, "ske": key.expiry,
              "sks": key.service, "skv": key.version, "sig": sig}
    return "&".join(f"{k}={quote(v, safe='')}" for k, v in fields.items())
