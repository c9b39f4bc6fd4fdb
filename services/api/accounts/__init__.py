"""Accounts: sign-up, sign-in, sessions and API tokens, as REST (rest.py) and pages (pages.py)."""
