"""The development stack: the `cstor` command, embedded Postgres, NATS and S3 servers, the
demo and the local admin. What `cstor up` and `cstor demo` need, and production does not:
each service runs without it (`python -m services.api`, as compose runs it), and nothing in
cstor/ or services/ imports it (an import-linter contract in pyproject.toml)."""
