"""Which passwords an account may have, and the words that say why one is refused."""

from __future__ import annotations

import pytest

from services.api.accounts import passwords
from services.api.accounts.passwords import (
    BLANK_RULE,
    COMMON_RULE,
    LENGTH_RULE,
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    TOO_LONG_RULE,
    password_problem,
)


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("", LENGTH_RULE),
        ("a7#k2!q", LENGTH_RULE),  # seven characters
        (" " * 12, BLANK_RULE),
        ("\t\n " * 4, BLANK_RULE),
        ("x" * (MAX_PASSWORD_LENGTH + 1), TOO_LONG_RULE),
        ("password", COMMON_RULE),
        ("Password1", COMMON_RULE),  # guessed as early as its lower case
        ("  password1  ", COMMON_RULE),  # spaces around do not make it another one
        ("12345678", COMMON_RULE),
        ("qwertyuiop", COMMON_RULE),
    ],
)
def test_a_weak_password_is_refused_with_the_rule_it_breaks(password: str, problem: str) -> None:
    assert password_problem(password) == problem


@pytest.mark.parametrize(
    "password",
    [
        "plum-Vortex-81-kettle",
        "a7#k2!qz",  # exactly the shortest allowed
        "x" * MAX_PASSWORD_LENGTH,  # exactly the longest allowed
        "correct horse battery staple zebra",
        "пароль-длинный-7",
    ],
)
def test_a_password_that_breaks_no_rule_is_accepted(password: str) -> None:
    assert password_problem(password) is None


def test_the_words_say_the_numbers_the_rules_use() -> None:
    assert str(MIN_PASSWORD_LENGTH) in LENGTH_RULE
    assert f"{MAX_PASSWORD_LENGTH:,}" in TOO_LONG_RULE
    assert f"{passwords.COMMON_PASSWORDS_REFUSED:,}" in COMMON_RULE


def test_the_common_list_is_the_top_of_zxcvbns_ranking_and_loaded_once() -> None:
    common = passwords.common_passwords()
    assert len(common) == passwords.COMMON_PASSWORDS_REFUSED
    assert "password" in common
    assert passwords.common_passwords() is common
