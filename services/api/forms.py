"""A dashboard form as the REST API's request struct, refused in the same error type.

A form is converted into the very struct a REST body is decoded into, so the schema is
one. When msgspec refuses it, the field at fault is found by converting each field alone
against its own annotation (msgspec says why only in prose), and the refusal is an
InvalidRequest naming the field's path, as the domain's rules name theirs; the page then
names every field by its label (``labelled``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec
from msgspec import inspect

from cstor.domain.exceptions import InvalidRequest

Struct = TypeVar("Struct", bound=msgspec.Struct)


def convert_form(fields: Mapping[str, Any], into: type[Struct]) -> Struct:
    """``fields`` (already shaped as ``into``) as the struct; InvalidRequest naming the field."""
    try:
        return msgspec.convert(fields, into)
    except msgspec.ValidationError:
        raise _at_fault(fields, into, "") from None


def labelled(error: InvalidRequest, labels: Mapping[str, str]) -> str:
    """The refusal in the form's words: each field path (``filters.min_size``) as its label."""
    return error.named(lambda path: labels.get(_last_name(path), path))


def _last_name(path: str) -> str:
    """``filters.include[2]`` → ``include``: forms name a nested field by its own name."""
    return path.rpartition(".")[2].partition("[")[0]


def _at_fault(fields: Mapping[str, Any], into: type[msgspec.Struct], prefix: str) -> InvalidRequest:
    for info in msgspec.structs.fields(into):
        path = prefix + info.name
        if info.name not in fields:
            if info.required:
                return InvalidRequest(f"{path} is required.", field=path, mentions=(path,))
            continue
        value = fields[info.name]
        if isinstance(info.type, type) and issubclass(info.type, msgspec.Struct):
            if not _fits(value, info.type):
                if isinstance(value, Mapping):
                    return _at_fault(value, info.type, path + ".")
                return _refused(path, "is not valid.")
        elif not _fits(value, info.type):
            return _why(path, value, inspect.type_info(info.type))
    return InvalidRequest("The form could not be read.")


def _fits(value: Any, annotation: Any) -> bool:
    try:
        msgspec.convert(value, annotation)
    except msgspec.ValidationError:
        return False
    return True


def _why(path: str, value: Any, kind: inspect.Type) -> InvalidRequest:
    """Why msgspec refused the field, told from its type: a choice, a length, a pattern."""
    kind = _without_none(kind)
    if isinstance(kind, inspect.UUIDType):
        return InvalidRequest("choose one of the list.", field=path)
    if _too_long(value, kind):
        return _refused(path, "is too long.")
    if isinstance(kind, inspect.StrType) and kind.pattern is not None:
        return _refused(path, "must be a URL starting with http:// or https://.")
    return _refused(path, "is not valid.")


def _refused(path: str, predicate: str) -> InvalidRequest:
    """A refusal that reads as a sentence about the field: ``Source bucket is too long.``"""
    return InvalidRequest(f"{path} {predicate}", field=path, mentions=(path,))


def _without_none(kind: inspect.Type) -> inspect.Type:
    """``X | None`` as ``X`` (and a documented type as its type): a blank field is absent."""
    if isinstance(kind, inspect.Metadata):
        return _without_none(kind.type)
    if isinstance(kind, inspect.UnionType):
        others = [t for t in kind.types if not isinstance(t, inspect.NoneType)]
        if len(others) == 1:
            return _without_none(others[0])
    return kind


def _too_long(value: Any, kind: inspect.Type) -> bool:
    if isinstance(kind, inspect.StrType):
        return (
            isinstance(value, str) and kind.max_length is not None and len(value) > kind.max_length
        )
    if isinstance(kind, inspect.ListType) and isinstance(value, list):
        item = _without_none(kind.item_type)
        too_many = kind.max_length is not None and len(value) > kind.max_length
        return too_many or any(_too_long(one, item) for one in value)
    return False
