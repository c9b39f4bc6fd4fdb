"""The one S3 adapter: connection checks, listings and verified object copies.

Control-plane calls (checks, listings, multipart bookkeeping, server-side
copies) go through boto3 in a thread. Object bytes go through obstore (Rust,
async) and, for multipart parts, plain HTTP PUTs to presigned URLs: both
measured fastest for cross-endpoint copies (bench/datapath.py).
"""

from cstor.s3.control import (
    Bucket,
    Endpoint,
    ListedObject,
    check_access,
    head_metadata,
    list_buckets,
)
from cstor.s3.copier import CopyOutcome, ObjectCopier
from cstor.s3.errors import S3Error, classify
from cstor.s3.listing import list_pages
from cstor.s3.multipart import JournaledUpload, UploadJournal
from cstor.s3.options import CopyHalted, CopyOptions

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
    "head_metadata",
    "list_buckets",
    "list_pages",
]
