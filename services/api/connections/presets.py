"""Where well-known S3 services answer, so a user picks a provider and a region."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

PROVIDERS = {
    "aws": "AWS S3",
    "lyve": "Seagate Lyve Cloud",
    "custom": "Custom endpoint",
}
_ENDPOINTS = {
    "aws": "https://s3.{region}.amazonaws.com",
    "lyve": "https://s3.{region}.lyvecloud.seagate.com",
}
_REGION = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)+$")


class PresetError(ValueError):
    """The provider, region and endpoint do not make an endpoint; the message says why,
    and ``field``, where it is known, names the field at fault."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def endpoint_for(provider: str, region: str, endpoint: str | None) -> str:
    """The endpoint URL: a preset's regional endpoint, or the custom one given."""
    if provider == "custom":
        if not endpoint:
            raise PresetError("Endpoint URL is required for a custom endpoint.")
        check_endpoint_url(endpoint)
        return endpoint.rstrip("/")
    if provider not in _ENDPOINTS:
        raise PresetError(f"Provider must be one of {', '.join(PROVIDERS)}, not {provider!r}.")
    if not _REGION.match(region):
        raise PresetError(
            f"{region!r} is not a region of {PROVIDERS[provider]}; regions look like us-east-1."
        )
    preset = _ENDPOINTS[provider].format(region=region)
    if endpoint and endpoint.rstrip("/") != preset:
        raise PresetError(
            f"{PROVIDERS[provider]} in {region} answers at {preset}; leave the endpoint blank"
            " or choose a custom endpoint."
        )
    return preset


def check_endpoint_url(url: str) -> None:
    """Raise PresetError unless ``url`` names only a place: scheme, host, port and path.

    A user and password in it would be stored and shown with the connection (the keys
    have fields of their own, kept in the secret store); a query or a fragment would be
    sent, or not, depending on the S3 client. The message never repeats the URL.
    """
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None:
        raise _endpoint_error(
            "the URL has a user (and perhaps a password) in it; give the keys as the access"
            " key and secret key instead"
        )
    if parts.query or url.endswith("?"):
        raise _endpoint_error("the URL has a query (?...); give only scheme, host, port and path")
    if parts.fragment or "#" in url:
        raise _endpoint_error(
            "the URL has a fragment (#...); give only scheme, host, port and path"
        )
    try:
        parts.port  # noqa: B018  (it parses the port, and raises if it is not one)
    except ValueError:
        raise _endpoint_error("the port must be a number from 1 to 65535") from None
    if not parts.hostname:
        raise _endpoint_error("the URL has no host")


def _endpoint_error(reason: str) -> PresetError:
    return PresetError(f"{reason[0].upper()}{reason[1:]}.", field="endpoint")
