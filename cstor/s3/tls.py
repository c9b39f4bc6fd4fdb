"""Which TLS certificates cstor trusts: the same as boto3 does, on every path to a store."""

from __future__ import annotations

import functools
import os
import ssl

import certifi


@functools.cache
def tls_context() -> ssl.SSLContext:
    """AWS_CA_BUNDLE if set (as for boto3), else certifi's CA certificates.

    The control plane (boto3) and the data paths (listings, parts, whole objects)
    then agree: a store that can be listed can be copied from.
    """
    return ssl.create_default_context(cafile=os.environ.get("AWS_CA_BUNDLE") or certifi.where())
