"""Where well-known S3 services answer, so a user picks a provider and a region."""

from __future__ import annotations

import re

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
    """The provider, region and endpoint do not make an endpoint; the message says why."""


def endpoint_for(provider: str, region: str, endpoint: str | None) -> str:
    """The endpoint URL: a preset's regional endpoint, or the custom one given."""
    if provider == "custom":
        if not endpoint:
            raise PresetError("Endpoint URL is required for a custom endpoint.")
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
