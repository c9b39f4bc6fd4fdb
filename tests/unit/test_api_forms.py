"""A dashboard form converted into the REST API's own request struct, without a server:
what msgspec refuses is told by the field at fault, in the form's labels, without
reading msgspec's message."""

from __future__ import annotations

import pytest

from cstor.domain.exceptions import InvalidRequest
from cstor.domain.planning import OVERWRITE_POLICIES
from services.api.connections.pages import LABELS, form_fields, in_form_words
from services.api.connections.schemas import ConnectionCreate, SecretRotate
from services.api.forms import convert_form, labelled
from services.api.migrations.form import LABELS as MIGRATION_LABELS
from services.api.migrations.form import OVERWRITE_CHOICES, migration_request

CONNECTION = {
    "name": "lab",
    "endpoint": "http://127.0.0.1:9000",
    "access_key": "AKIA",
    "secret_key": " secret with spaces ",
}


def refusal(form: dict[str, str]) -> str:
    with pytest.raises(InvalidRequest) as raised:
        convert_form(form_fields(form, ConnectionCreate), ConnectionCreate)
    return in_form_words(raised.value)


def test_a_valid_connection_form_is_the_rest_struct() -> None:
    created = convert_form(form_fields(CONNECTION, ConnectionCreate), ConnectionCreate)

    assert created == ConnectionCreate(
        name="lab",
        endpoint="http://127.0.0.1:9000",
        access_key="AKIA",
        secret_key=" secret with spaces ",  # the secret is taken as typed
    )


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"name": "  "}, "Name is required."),
        ({"name": "n" * 201}, "Name is too long."),
        ({"endpoint": "ftp://example.com"}, "Endpoint URL must be a URL starting with http://"),
        ({"endpoint": "http://" + "e" * 2100}, "Endpoint URL is too long."),
        ({"provider": "azure"}, "Provider is not valid."),
        ({"secret_key": ""}, "Secret key is required."),
    ],
)
def test_a_field_msgspec_refuses_is_named_by_its_label(changes: dict[str, str], words: str) -> None:
    assert refusal(CONNECTION | changes).startswith(words)


def test_new_keys_are_the_rotation_struct_and_a_missing_secret_is_named() -> None:
    keys = convert_form(form_fields({"secret_key": "s", "name": "x"}, SecretRotate), SecretRotate)
    assert keys == SecretRotate(secret_key="s")

    with pytest.raises(InvalidRequest) as raised:
        convert_form(form_fields({"access_key": "a"}, SecretRotate), SecretRotate)
    assert raised.value.field == "secret_key"
    assert labelled(raised.value, LABELS) == "Secret key is required."


def test_a_migration_form_refusal_names_the_nested_field() -> None:
    # Given a migration form whose include globs are too long for the schema
    form = {
        "source_connection_id": "4a1f4b0e-5a31-4a0e-9c55-8d0e6d2f6a11",
        "source_bucket": "source",
        "destination_connection_id": "4a1f4b0e-5a31-4a0e-9c55-8d0e6d2f6a12",
        "destination_bucket": "destination",
        "include": "a" * 1025,
    }

    # Then the refusal is the nested field's, in the form's label
    with pytest.raises(InvalidRequest) as raised:
        migration_request(form)
    assert raised.value.field == "filters.include"
    assert labelled(raised.value, MIGRATION_LABELS) == "Include is too long."

    # And a connection that is not one names its field, not msgspec's words
    with pytest.raises(InvalidRequest) as chosen:
        migration_request(form | {"include": "", "source_connection_id": "lab"})
    assert chosen.value.field == "source_connection_id"
    assert labelled(chosen.value, MIGRATION_LABELS).startswith("Source connection: ")


def test_the_form_offers_every_overwrite_policy_and_no_other() -> None:
    assert tuple(OVERWRITE_CHOICES) == OVERWRITE_POLICIES
