"""Connections: an S3 endpoint and its keys, tested before they are saved; REST and pages."""
