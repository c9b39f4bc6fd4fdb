"""S3's rules for bucket names, checked before a name goes into a URL or an event.

A name that breaks them cannot name a bucket, yet some stores answer it anyway (``a..b``
on a file-backed store walks its folders and scans as an empty bucket), so a migration
from it would "complete" having copied nothing.
"""

from __future__ import annotations

import ipaddress
import re

from cstor.domain.exceptions import InvalidRequest

MAX_LENGTH = 255
"""The longest name accepted: legacy us-east-1 buckets may be this long (see below)."""

# Legacy leniency: letters of either case, digits, dots, hyphens and underscores.
_CHARACTERS = re.compile(r"[A-Za-z0-9._-]+")
_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


def check_bucket_name(name: str, field: str) -> None:
    """Raise InvalidRequest, naming ``field``, unless ``name`` can be an S3 bucket's.

    Today's rules: 3 to 63 characters of lowercase letters, digits, dots and hyphens,
    beginning and ending with a letter or digit, no two dots together, not an IP
    address, not prefixed ``xn--``/``sthree-``/``amzn-s3-demo-`` nor suffixed
    ``-s3alias``/``--ol-s3``/``.mrap``/``--x-s3``/``--table-s3``.

    Leniency for buckets that exist already: names made in us-east-1 before March 2018
    (and on stores such as Ceph that still allow it) may have uppercase letters and
    underscores and be up to 255 characters long, so those are accepted; a user can
    only name a bucket that exists, and the endpoint is the judge of that. Every other
    rule holds for them too: a name that breaks one names no bucket anywhere.
    """
    reason = _broken_rule(name)
    if reason is not None:
        raise InvalidRequest(
            f"{name[:80]!r} is not a bucket name S3 allows: {reason}.", field=field
        )


def _broken_rule(name: str) -> str | None:
    """The first rule ``name`` breaks, in words, or None."""
    if not 3 <= len(name) <= MAX_LENGTH:
        return f"it must be 3 to 63 characters long ({MAX_LENGTH} for a legacy bucket)"
    if not _CHARACTERS.fullmatch(name):
        return "it may have only letters, digits, dots, hyphens (and, in legacy names, underscores)"
    if not (name[0].isalnum() and name[-1].isalnum()):
        return "it must begin and end with a letter or a digit"
    if ".." in name:
        return "two dots may not be next to each other"
    if _is_ip_address(name):
        return "it may not be an IP address"
    lowered = name.lower()
    if lowered.startswith(_RESERVED_PREFIXES) or lowered.endswith(_RESERVED_SUFFIXES):
        return "that prefix or suffix is reserved by S3"
    return None


def _is_ip_address(name: str) -> bool:
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        return False
    return True
