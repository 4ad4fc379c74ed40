"""What several HTTP backends share: the loopback rule for plain HTTP."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from lakeshift.errors import UsageError


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_http(endpoint: str, allow_http: bool) -> bool:
    """Whether plain HTTP is in use; refuse it to a non-loopback host unless allowed."""
    if not endpoint.lower().startswith("http://"):
        return False
    if not (allow_http or is_loopback(endpoint)):
        raise UsageError(f"endpoint {endpoint} is plain HTTP to a host that is not loopback: "
                         "use https, or pass --allow-http if you really mean it")
    return True
