"""The tests' network guard (tests/netguard/sitecustomize.py): in the test process and in
every process a test starts, a DNS lookup of anything but loopback fails loudly — so no test
can reach a cloud endpoint or an instance-metadata service, even by mistake."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from tests import servers

_CHILD = """
import socket, sys
for host in sys.argv[1:]:
    try:
        socket.getaddrinfo(host, 443)
        print("resolved", host)
    except OSError as e:
        print("refused", host, e)
"""


@pytest.mark.parametrize("host", ["example.com", "s3.amazonaws.com",
                                  "acct.blob.core.windows.net", "169.254.169.254",
                                  "login.microsoftonline.com"])
def test_a_lookup_of_a_non_loopback_name_fails_here(host: str) -> None:
    with pytest.raises(socket.gaierror, match=rf"netguard: .*{host}"):
        socket.getaddrinfo(host, 443)
    with pytest.raises(socket.gaierror, match="netguard"):
        socket.gethostbyname(host)


def test_loopback_still_resolves() -> None:
    for host in ("127.0.0.1", "localhost", "::1", None):
        assert socket.getaddrinfo(host, 80)


def test_a_connection_to_another_address_is_refused_but_binding_is_not() -> None:
    with socket.socket() as s, pytest.raises(ConnectionRefusedError, match="netguard"):
        s.connect(("169.254.169.254", 80))
    with socket.socket() as s, pytest.raises(ConnectionRefusedError, match="netguard"):
        s.connect_ex(("192.0.2.1", 80))
    # An address to listen on is no lookup and reaches nothing (the monitor's --host).
    assert socket.getaddrinfo("192.0.2.1", 0, type=socket.SOCK_STREAM,
                              flags=socket.AI_PASSIVE)
    with pytest.raises(socket.gaierror, match="netguard"):
        socket.getaddrinfo("example.com", 0, flags=socket.AI_PASSIVE)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        with socket.create_connection(s.getsockname(), timeout=5):
            pass


@pytest.mark.parametrize("env", ["servers", "os"])
def test_children_are_guarded_too(env: str, capfd: pytest.CaptureFixture[str]) -> None:
    """The servers' clean environment (moto, CLI subprocesses) and the test process's own
    both carry the guard to a child Python."""
    child_env = servers.clean_env() if env == "servers" else dict(os.environ)
    p = subprocess.run([sys.executable, "-c", _CHILD, "localhost", "169.254.169.254",
                        "example.com"], env=child_env, capture_output=True, text=True,
                       timeout=60)
    lines = p.stdout.splitlines()
    assert lines[0] == "resolved localhost", p.stdout
    assert lines[1].startswith("refused 169.254.169.254") and "netguard" in lines[1]
    assert lines[2].startswith("refused example.com") and "netguard" in lines[2]
    assert "netguard: refused a DNS lookup of 'example.com'" in p.stderr  # loudly
