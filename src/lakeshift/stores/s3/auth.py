"""AWS credentials from the standard places, without probing instance metadata.

Precedence (botocore's order): AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY[/AWS_SESSION_TOKEN];
AWS_PROFILE (or --aws-profile) from ~/.aws/credentials and ~/.aws/config (static keys,
assume-role, SSO, credential_process); web identity (AWS_WEB_IDENTITY_TOKEN_FILE); ECS/EKS
container credentials; the EC2 instance role only with --aws-imds (LAKESHIFT_AWS_IMDS=true).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any
from urllib.parse import urlsplit

from lakeshift.errors import AuthError, UsageError
from lakeshift.redact import register_secret
from lakeshift.stores.base import StoreOptions


@dataclass(frozen=True)
class AwsSettings:
    endpoint: str | None
    region: str
    #: botocore Credentials (refreshable or not), None when anonymous; kept out of reprs.
    credentials: Any = field(repr=False)
    session: Any = field(repr=False)


def resolve(options: StoreOptions) -> AwsSettings:
    import botocore.exceptions
    import botocore.session

    try:
        session = botocore.session.Session(profile=options.aws_profile or None)
        region = (options.s3_region or os.environ.get("AWS_REGION")
                  or os.environ.get("AWS_DEFAULT_REGION") or session.get_config_variable("region")
                  or "us-east-1")
    except botocore.exceptions.ProfileNotFound as e:
        raise UsageError(f"AWS profile {options.aws_profile!r} not found in ~/.aws/config or "
                         "~/.aws/credentials: check --aws-profile / AWS_PROFILE") from e
    endpoint = (options.s3_endpoint or os.environ.get("AWS_ENDPOINT_URL_S3")
                or os.environ.get("AWS_ENDPOINT_URL"))
    if endpoint:
        check_endpoint(endpoint, "--s3-endpoint" if options.s3_endpoint else
                       "AWS_ENDPOINT_URL_S3" if os.environ.get("AWS_ENDPOINT_URL_S3")
                       else "AWS_ENDPOINT_URL")
    if options.s3_anonymous:
        return AwsSettings(endpoint, region, None, session)
    resolver = session.get_component("credential_provider")
    imds = options.aws_imds or os.environ.get("LAKESHIFT_AWS_IMDS", "").lower() in ("1", "true")
    if not imds:
        resolver.remove("iam-role")
    try:
        creds = resolver.load_credentials()
    except botocore.exceptions.BotoCoreError as e:
        raise AuthError(f"AWS credentials could not be loaded: {e}") from e
    if creds is None:
        raise AuthError("no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                        "or AWS_PROFILE (or --aws-profile); on EC2 pass --aws-imds to use the "
                        "instance role; --s3-anonymous for public buckets")
    frozen = creds.get_frozen_credentials()
    register_secret(frozen.secret_key)
    register_secret(frozen.token)
    return AwsSettings(endpoint, region, creds, session)


def check_endpoint(endpoint: str, source: str) -> None:
    """Refuse an endpoint that is not an http(s) URL with a host, before any request."""
    try:
        parts = urlsplit(endpoint)
        parts.port  # noqa: B018 -- raises ValueError on a port that is not a number
    except ValueError:
        parts = None
    if parts is None or parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise UsageError(f"{source} {endpoint!r} is not a URL: give it as "
                         "https://HOST[:PORT] (http:// only for loopback or with --allow-http)")


def obstore_provider(settings: AwsSettings) -> Callable[[], Any] | None:
    """A credential callback for obstore that refreshes temporary credentials."""
    creds = settings.credentials
    if creds is None:
        return None

    def provide() -> Any:
        frozen = creds.get_frozen_credentials()
        register_secret(frozen.secret_key)
        register_secret(frozen.token)
        out: dict[str, Any] = {"access_key_id": frozen.access_key,
                               "secret_access_key": frozen.secret_key}
        if frozen.token:
            out["token"] = frozen.token
        expiry = getattr(creds, "_expiry_time", None)
        # obstore accepts only datetime.timezone.utc; botocore gives dateutil's tzlocal/tzutc.
        out["expires_at"] = expiry.astimezone(UTC) if expiry is not None else None
        return out

    return provide
