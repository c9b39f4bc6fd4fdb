"""Which passwords an account may have: long enough, not blank, not one everyone tries.

The common passwords are the first of the ranked list that zxcvbn ships (from leaked
password dumps, most frequent first), the ones a guesser tries before anything else;
the rate limit on sign-in cannot stop a guess that comes in the first few tries.
"""

from __future__ import annotations

import functools

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
COMMON_PASSWORDS_REFUSED = 10_000

LENGTH_RULE = f"Choose a password of at least {MIN_PASSWORD_LENGTH} characters."
BLANK_RULE = "Choose a password that is not only spaces."
COMMON_RULE = (
    f"That password is one of the {COMMON_PASSWORDS_REFUSED:,} most common ones, the first"
    " that anyone guessing would try. Choose another."
)
TOO_LONG_RULE = f"That password is too long ({MAX_PASSWORD_LENGTH:,} characters at most)."


def password_problem(password: str) -> str | None:
    """Why ``password`` is refused, in words for the person choosing it; None if it is not."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return LENGTH_RULE
    if password.isspace():
        return BLANK_RULE
    if len(password) > MAX_PASSWORD_LENGTH:
        return TOO_LONG_RULE
    # The lists are lower case; "Password1" is guessed as early as "password1".
    if password.strip().lower() in common_passwords():
        return COMMON_RULE
    return None


@functools.cache
def common_passwords() -> frozenset[str]:
    """The most common passwords, loaded once, at the first sign-up (zxcvbn's import
    builds its dictionaries, ~20 ms and ~13 MB; processes that never sign anyone up
    never pay it)."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"][:COMMON_PASSWORDS_REFUSED])
