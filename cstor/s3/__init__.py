"""The one S3 adapter: connection checks, listings and verified object copies.

Control-plane calls (checks, listings, multipart bookkeeping) go through boto3
in a thread. Whole objects and server-side copies go through `wire`, SigV4-signed
HTTP/1.1 on the event loop; multipart sources stream through urllib3 from a
presigned GET, read in threads, their parts going up as plain HTTP PUTs to presigned
URLs: each stack measured for its job (docs/http_stacks.md, bench/stacks.py).

Importing the adapter redacts the process's log records (`redaction.redact_logs`):
what signs requests also sees to it that no signed request is logged, in whichever
service loads it and however that service configures its logging.
"""

from cstor.s3.control import (
    Bucket,
    Endpoint,
    ListedObject,
    check_access,
    head_metadata,
    list_buckets,
    load_model,
)
from cstor.s3.copier import CopyOutcome, ObjectCopier
from cstor.s3.errors import S3Error, classify, connection_side
from cstor.s3.listing import list_pages
from cstor.s3.multipart import JournaledUpload, UploadJournal
from cstor.s3.options import CopyHalted, CopyOptions
from cstor.s3.redaction import redact_logs

redact_logs()

__all__ = [
    "Bucket",
    "CopyHalted",
    "CopyOptions",
    "CopyOutcome",
    "Endpoint",
    "JournaledUpload",
    "ListedObject",
    "ObjectCopier",
    "S3Error",
    "UploadJournal",
    "check_access",
    "classify",
    "connection_side",
    "head_metadata",
    "list_buckets",
    "list_pages",
    "load_model",
]
