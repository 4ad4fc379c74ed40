"""``redact`` takes out the secret and nothing after it: the punctuation a message goes on
with after a SAS signature, a key or a token stays (``…sig=XYZ: error`` read
``…sig=*** error``: the colon went with the signature), and a value is never left half
shown."""

from __future__ import annotations

import pytest

from lakeshift.redact import redact

URL = "https://acct.blob.core.windows.net/c/k?sv=2023-11-03&sr=b&sig=AbC%2Bd%2F1%3D"


@pytest.mark.parametrize(("text", "expected"), [
    # a SAS signature: at the end, before &, :, a space, a quote, ), ., ], >, <, ;
    (URL, "https://acct.blob.core.windows.net/c/k?sv=2023-11-03&sr=b&sig=***"),
    (f"{URL}&se=x", "https://acct.blob.core.windows.net/c/k?sv=2023-11-03&sr=b&sig=***&se=***"),
    (f"GET {URL}: 403 AuthorizationFailure",
     "GET https://acct.blob.core.windows.net/c/k?sv=2023-11-03&sr=b&sig=***: 403 "
     "AuthorizationFailure"),
    (f"{URL} failed", "https://acct.blob.core.windows.net/c/k?sv=2023-11-03&sr=b&sig=*** failed"),
    (f"url '{URL}' refused", "url 'https://acct.blob.core.windows.net/c/k?sv=2023-11-03&sr=b"
     "&sig=***' refused"),
    (f'url "{URL}"', 'url "https://acct.blob.core.windows.net/c/k?sv=2023-11-03&sr=b&sig=***"'),
    (f"(copy source {URL})", "(copy source https://acct.blob.core.windows.net/c/k?sv=2023-11-03"
     "&sr=b&sig=***)"),
    (f"from {URL}.", "from https://acct.blob.core.windows.net/c/k?sv=2023-11-03&sr=b&sig=***."),
    (f"[{URL}], next", "[https://acct.blob.core.windows.net/c/k?sv=2023-11-03&sr=b&sig=***], "
     "next"),
    (f"<Url>{URL}</Url>", "<Url>https://acct.blob.core.windows.net/c/k?sv=2023-11-03&sr=b"
     "&sig=***</Url>"),
    (f"<{URL}>", "<https://acct.blob.core.windows.net/c/k?sv=2023-11-03&sr=b&sig=***>"),
    # the other query secrets alike; a ':' inside a value (an expiry time) stays redacted
    ("?se=2026-12-03T10:00:00Z: expired", "?se=***: expired"),
    ("s3://b/k?X-Amz-Credential=AKIAEXAMPLE%2F20261203%2Fus-east-1%2Fs3%2Faws4_request"
     "&X-Amz-Signature=0a1b2c3d: SignatureDoesNotMatch",
     "s3://b/k?X-Amz-Credential=***&X-Amz-Signature=***: SignatureDoesNotMatch"),
    ("(?X-Amz-Security-Token=FwoGZXIvYXdzEJr%2F%2F%2F)", "(?X-Amz-Security-Token=***)"),
    ("&token=eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl: bad",
     "&token=***: bad"),
    # connection-string keys: before ; (the next pair), :, ), a quote, the end
    ("AccountName=a;AccountKey=a2V5a2V5a2V5a2V5==;EndpointSuffix=core.windows.net",
     "AccountName=a;AccountKey=***;EndpointSuffix=core.windows.net"),
    ("AccountKey=a2V5a2V5a2V5a2V5==: not base64", "AccountKey=***: not base64"),
    ("(AccountKey=a2V5a2V5a2V5a2V5==)", "(AccountKey=***)"),
    ("'SharedAccessKey=a2V5a2V5a2V5a2V5='", "'SharedAccessKey=***'"),
    ("SharedAccessSignature=sv=2023-11-03&sig=AbC%3D", "SharedAccessSignature=***&sig=***"),
    # Authorization headers: the credential goes, what follows it stays
    ("Authorization: Bearer eyJhbGciOi.eyJzdWIi.c2ln: refused", "Authorization: ***: refused"),
    ("Authorization: SharedKey acct:c2lnbmF0dXJlPQ==) sent",
     "Authorization: ***) sent"),
    ("Authorization: c2VjcmV0", "Authorization: ***"),
    # a password may end in punctuation: it runs to the next ; & or space, as before
    ("Server=h;Password=p@ss:w0rd);Database=d", "Server=h;Password=***;Database=d"),
    ("postgresql://user:p%40ss@host:5432/db: refused", "postgresql://user:***@host:5432/db: "
     "refused"),
])
def test_a_secret_goes_and_what_follows_it_stays(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_nothing_of_a_value_is_shown_whatever_comes_after_it() -> None:
    """Every secret value in every shape above is gone whole, even when what follows it is
    punctuation the value itself could not end with."""
    for tail in ("", ":", "::", ")", "),", ".", "!", "?", ";", ";x", "'", '"', "<", ">",
                 "]", "}", " x", "&x=1", "\n", "):"):
        for text in (f"?sig=SECRETxyz{tail}", f"AccountKey=SECRETxyz{tail}",
                     f"Authorization: Bearer SECRETxyz{tail}", f"&token=SECRETxyz{tail}"):
            out = redact(text)
            assert "SECRET" not in out and "xyz" not in out, (text, out)
            assert out.endswith(tail), (text, out)


def test_a_sigv4_authorization_header_loses_its_signature() -> None:
    """Its first word after the scheme is the credential scope; the signature comes after
    ``, SignedHeaders=…,`` and was shown (before session 20 too)."""
    said = redact("Authorization: AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20261203/us-east-1/"
                  "s3/aws4_request, SignedHeaders=host;x-amz-date, Signature="
                  "fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024: refused")
    assert "fe5f80f77d5fa3" not in said and "AKIAEXAMPLE" not in said, said
    assert said.endswith("Signature=***: refused"), said


def test_a_long_run_of_punctuation_after_a_secret_s_name_takes_linear_time() -> None:
    """Where a value ends was found by a lookahead at each of its characters, which scanned
    the punctuation after it each time: 16,000 dots after ``?sig=`` took 2.5 s, 40,000
    about 15 s.  Now the value is matched to its word end once (milliseconds)."""
    import time

    for text in ("?sig=" + "." * 40_000 + "x", "AccountKey=" + ":" * 40_000 + "x",
                 "Authorization: Bearer " + ")" * 40_000 + "x"):
        start = time.perf_counter()
        said = redact(text)
        assert time.perf_counter() - start < 2.0, text[:20]
        assert said.endswith("***") and "x" not in said[-2:], said[:40]
