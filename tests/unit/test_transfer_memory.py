"""The transfer service keeps the memory its copies free for the next parts (glibc)."""

import platform

import pytest

from services.transfer import service


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="a glibc setting")
def test_glibc_takes_the_settings() -> None:
    assert service.keep_freed_memory(512 * 1024 * 1024)
    # A budget over what C's int holds is kept at its largest, not refused.
    assert service.keep_freed_memory(8 * 1024**3)


def test_other_c_libraries_are_left_as_they_are(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(platform, "libc_ver", lambda: ("musl", "1.2"))
    assert not service.keep_freed_memory(512 * 1024 * 1024)
