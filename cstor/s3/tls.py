"""Which TLS certificates cstor trusts: the same as boto3 does, on every path to a store."""

from __future__ import annotations

import functools
import os
import ssl

import certifi


def ca_bundle() -> str:
    """The CA certificates to trust: AWS_CA_BUNDLE if set (as for boto3), else certifi's."""
    return os.environ.get("AWS_CA_BUNDLE") or certifi.where()


@functools.cache
def tls_context() -> ssl.SSLContext:
    """A TLS context trusting `ca_bundle`, with certificate and host name checks.

    The control plane (boto3, told the same bundle) and the data paths (listings,
    parts, whole objects) then agree: a store that can be listed can be copied from.
    """
    return ssl.create_default_context(cafile=ca_bundle())
