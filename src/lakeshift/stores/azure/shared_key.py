"""Shared Key: the ``Authorization`` value the Blob service checks for a request signed
with the account key ("Authorize with Shared Key" in the Blob service REST reference), as
azure-storage-blob computes it — tested differentially against it
(tests/unit/test_azure_signer.py).  Used by the lean Blob client (azure/rest.py) and the
DFS double in the tests."""

from __future__ import annotations

import binascii
from functools import cmp_to_key, lru_cache
from itertools import repeat
from urllib.parse import unquote, urlsplit

from lakeshift.stores.keyed_mac import _MACS, mac_of

_b2a = binascii.b2a_base64

# The order in which the Blob service sorts x-ms- header names when it checks a Shared Key
# signature: not ordinal (Python's sorted) but a two-level collation in which '-' and "'"
# weigh nothing at the first level (so "x-ms-meta-my_x2D_key" and "x-ms-meta-my1" compare
# as "xmsmetamy_x2D_key" and "xmsmetamy1", and '_' sorts before digits).  The weights are the
# service's, as published in azure-storage-blob (_shared/authentication.py, MIT licence),
# which the differential test in tests/unit/test_azure_signer.py checks against.
_WEIGHTS_1 = (
    [0x0] * 33
    + [0x71C, 0x0, 0x71F, 0x721, 0x723, 0x725, 0x0, 0x0, 0x0, 0x72D, 0x803, 0x0, 0x0, 0x733,
       0x0, 0xD03, 0xD1A, 0xD1C, 0xD1E, 0xD20, 0xD22, 0xD24, 0xD26, 0xD28, 0xD2A, 0x0, 0x0,
       0x0, 0x0, 0x0, 0x0, 0x0]
    + [0xE02, 0xE09, 0xE0A, 0xE1A, 0xE21, 0xE23, 0xE25, 0xE2C, 0xE32, 0xE35, 0xE36, 0xE48,
       0xE51, 0xE70, 0xE7C, 0xE7E, 0xE89, 0xE8A, 0xE91, 0xE99, 0xE9F, 0xEA2, 0xEA4, 0xEA6,
       0xEA7, 0xEA9]
    + [0x0, 0x0, 0x0, 0x743, 0x744, 0x748]
    + [0xE02, 0xE09, 0xE0A, 0xE1A, 0xE21, 0xE23, 0xE25, 0xE2C, 0xE32, 0xE35, 0xE36, 0xE48,
       0xE51, 0xE70, 0xE7C, 0xE7E, 0xE89, 0xE8A, 0xE91, 0xE99, 0xE9F, 0xEA2, 0xEA4, 0xEA6,
       0xEA7, 0xEA9]
    + [0x0, 0x74C, 0x0, 0x750, 0x0]
)
_WEIGHTS_2 = [0x0] * 39 + [0x8012] + [0x0] * 5 + [0x8212] + [0x0] * 82


def _service_compare(a: str, b: str) -> int:
    """-1, 0 or 1 as the service orders header names ``a`` and ``b`` (see the weights)."""
    tables = (_WEIGHTS_1, _WEIGHTS_2)
    level, i, j = 0, 0, 0
    while level < len(tables):
        if level == len(tables) - 1 and i != j:
            return -1 if i > j else 1
        table = tables[level]
        w1 = table[ord(a[i])] if i < len(a) and ord(a[i]) < 128 else (1 if i >= len(a) else 0)
        w2 = table[ord(b[j])] if j < len(b) and ord(b[j]) < 128 else (1 if j >= len(b) else 0)
        if w1 == 1 and w2 == 1:
            level, i, j = level + 1, 0, 0
        elif w1 == w2:
            i, j = i + 1, j + 1
        elif w1 == 0:
            i += 1
        elif w2 == 0:
            j += 1
        else:
            return -1 if w1 < w2 else 1
    return 0


@lru_cache(maxsize=1024)
def _service_order(names: tuple[str, ...]) -> tuple[str, ...]:
    """``names`` in the service's order: the same few sets of header names recur on every
    request, and sorting them with ``_service_compare`` in Python cost ~34 µs a request
    (of ~1.5 ms of client CPU per small object)."""
    return tuple(sorted(names, key=cmp_to_key(_service_compare)))


def canonical_resource(account: str, url: str) -> str:
    """``/account/path`` (the path as sent, percent-encoded) and one ``\nname:value`` line
    per query parameter: names lowercased and sorted, values percent-decoded (``+`` stays
    ``+``), repeated names' values sorted and joined by commas."""
    if "?" not in url and "#" not in url:
        # No query (Shared Key requests on a blob): the path is what follows the origin.
        start = url.find("//")
        slash = url.find("/", start + 2) if start >= 0 else url.find("/")
        return f"/{account}{url[slash:] if slash >= 0 else ''}"
    split = urlsplit(url)
    resource = f"/{account}{split.path}"
    query: dict[str, list[str]] = {}
    for pair in split.query.split("&") if split.query else ():
        name, _, value = pair.partition("=")
        query.setdefault(unquote(name).lower(), []).append(unquote(value))
    for name in sorted(query):
        resource += f"\n{name}:{','.join(sorted(query[name]))}"
    return resource


#: The standard headers Shared Key signs, in its order (Date: always empty, x-ms-date is
#: sent); Content-Length is signed empty when it is 0.
_SIGNED_STANDARD = ("content-encoding", "content-language", "content-length", "content-md5",
                    "content-type", "date", "if-modified-since", "if-match", "if-none-match",
                    "if-unmodified-since", "range")


@lru_cache(maxsize=1024)
def _signing_plan(names: tuple[str, ...]) -> tuple[tuple[str | None, ...], tuple[str, ...],
                                                   tuple[str, ...]]:
    """For a request's header names as given (in order), which of them Shared Key signs:
    per standard header the name that holds it (None: empty), and the ``x-ms-`` headers'
    "lowercase name:" prefixes and the names given, in the service's order.  Where two names
    differ only in case the later one counts, as in a dict of the lowercased names.  The
    same few name lists recur on every request: built once each."""
    given = {name.lower(): name for name in names}
    standard = tuple(None if n == "date" else given.get(n) for n in _SIGNED_STANDARD)
    xms = _service_order(tuple(sorted(n for n in given if n.startswith("x-ms-"))))
    return standard, tuple(f"{n}:" for n in xms), tuple(given[n] for n in xms)


_EMPTY = repeat("")


def shared_key_signature(account: str, key: bytes, method: str, url: str,
                         headers: dict[str, str]) -> str:
    """The ``Authorization`` value for the Blob service (Shared Key, version 2015-02-21+).

    As the service and azure-storage-blob compute it: ``x-ms-`` header names lowercased and
    put in the service's order (``_service_compare``), values exactly as sent (no folding of
    inner whitespace: the service does not fold, and ``a  b`` signed as ``a b`` is
    rejected).  A value must not begin or end with whitespace, which HTTP drops in transit
    (``props.encode_metadata_value`` sees to it for metadata).  The string to sign is
    assembled in C-level maps over the cached plan (no Python step per header)."""
    standard, prefixes, names = _signing_plan(tuple(headers))
    parts = [method]
    parts.extend(map(headers.get, standard, _EMPTY))  # type: ignore[arg-type]  # (None: "")
    if parts[3] == "0":  # Content-Length 0 is signed empty
        parts[3] = ""
    parts.extend(map(str.__add__, prefixes, map(headers.__getitem__, names)))
    parts.append(canonical_resource(account, url))
    to_sign = "\n".join(parts)
    # HMAC-SHA256 from the key's states set up once (keyed_mac.KeyedMAC.digest, inline).
    mac = _MACS.get(key) or mac_of(key)
    inner = mac.inner.copy()
    inner.update(to_sign.encode("utf-8"))
    outer = mac.outer.copy()
    outer.update(inner.digest())
    digest = outer.digest()
    return f"SharedKey {account}:{_b2a(digest, newline=False).decode()}"  # (_b64, inline)
