"""Buckets: what a connection's keys can see, and a bucket's scan; REST and pages."""
