from collections.abc import Sequence

from typing_extensions import Buffer

def md5_lanes(messages: Sequence[Sequence[Buffer]], /) -> list[bytes]: ...
