"""The settings object, read from CSTOR_* variables: what each becomes, and what is refused
with the variable named (a typo stops the start, it is not found hours later)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cstor import stream
from cstor.settings import Settings, SettingsError


def test_nothing_set_gives_the_defaults() -> None:
    assert Settings.from_env({}) == Settings()


def test_values_are_read_as_their_fields_types() -> None:
    settings = Settings.from_env(
        {
            "CSTOR_API_PORT": "8123",
            "CSTOR_PLANNER_ACK_WAIT": "2.5",
            "CSTOR_DATA_DIR": "/var/lib/cstor",
            "CSTOR_SECRETS_BACKEND": "aws-secrets-manager",
            "CSTOR_STREAM_NAME": "OTHER",
            "CSTOR_STREAM_DUPLICATE_WINDOW": "2",
            "CSTOR_LOG_FORMAT": "json",
        }
    )
    assert settings.api_port == 8123
    assert settings.planner_ack_wait == 2.5
    assert settings.data_dir == Path("/var/lib/cstor")
    assert settings.secrets_backend == "aws-secrets-manager"
    assert settings.stream_name == "OTHER"
    assert settings.stream_duplicate_window == 2.0
    assert settings.log_format == "json"
    assert Settings().log_format == "text"


def test_an_empty_variable_keeps_the_default_and_others_are_ignored() -> None:
    settings = Settings.from_env({"CSTOR_API_PORT": "", "CSTOR_NO_SUCH": "1", "API_PORT": "1"})
    assert settings.api_port == Settings().api_port


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("CSTOR_API_PORT", "eighty"),
        ("CSTOR_API_PORT", "80.5"),
        ("CSTOR_TRANSFER_ACK_WAIT", "soon"),
        ("CSTOR_SECRETS_BACKEND", "vault"),
        ("CSTOR_STREAM_DUPLICATE_WINDOW", "0"),
        ("CSTOR_STREAM_MAX_AGE", "-1"),
        ("CSTOR_STREAM_MAX_AGE", "a week"),
        ("CSTOR_STREAM_MAX_BYTES", "10GiB"),
        ("CSTOR_LOG_FORMAT", "xml"),
    ],
)
def test_a_value_of_the_wrong_kind_is_refused_naming_the_variable(
    variable: str, value: str
) -> None:
    with pytest.raises(SettingsError, match=variable):
        Settings.from_env({variable: value})


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        # A transfer with no slot to copy in would wait for ever, copying nothing
        ("CSTOR_TRANSFER_CONCURRENCY", "0"),
        ("CSTOR_COPY_ATTEMPTS", "0"),
        ("CSTOR_PACKET_MAX_OBJECTS", "0"),
        ("CSTOR_PACKET_MAX_BYTES", "-1"),
        ("CSTOR_TRANSFER_MEMORY", "0"),
        ("CSTOR_TRANSFER_PARTS_PER_OBJECT", "0"),
        ("CSTOR_CONSUMER_MAX_FAILURES", "0"),
        ("CSTOR_TRANSFER_ACK_WAIT", "0"),
        ("CSTOR_API_PORT", "70000"),
        # S3 takes no part over 5 GiB: every multipart copy would fail as "too large"
        ("CSTOR_TRANSFER_PART_SIZE", str(5 * 1024**3 + 1)),
        ("CSTOR_SERVER_COPY_PART_SIZE", str(6 * 1024**3)),
    ],
)
def test_a_count_or_size_that_cannot_work_is_refused_naming_the_variable(
    variable: str, value: str
) -> None:
    with pytest.raises(SettingsError, match=variable):
        Settings.from_env({variable: value})


@pytest.mark.parametrize("entry", ["10.0.0.0/33", "proxy.internal", "10.0.0.300"])
def test_a_trusted_proxy_that_is_no_address_stops_the_start_naming_the_variable(
    entry: str,
) -> None:
    with pytest.raises(ValueError, match=f"CSTOR_TRUSTED_PROXIES: '{entry}'"):
        Settings.from_env({"CSTOR_TRUSTED_PROXIES": f"10.0.0.5, {entry}"})


def test_trusted_proxies_are_addresses_or_networks() -> None:
    settings = Settings(trusted_proxies=" 10.0.0.5 , 192.168.0.0/16,, ::1 ")
    assert [str(n) for n in settings.trusted_proxy_networks()] == [
        "10.0.0.5/32",
        "192.168.0.0/16",
        "::1/128",
    ]


def test_admins_are_compared_in_lower_case_and_blanks_are_no_one() -> None:
    settings = Settings(admin_emails=" Ada@Example.com, ,bob@example.com,")
    assert settings.admins == frozenset({"ada@example.com", "bob@example.com"})
    assert Settings().admins == frozenset()


def test_settings_passed_to_a_child_process_read_back_the_same() -> None:
    settings = Settings(
        data_dir=Path("/tmp/x"),
        api_port=9001,
        transfer_ack_wait=4.5,
        trusted_proxies="10.0.0.0/8",
        admin_emails="a@example.com",
    )
    env = settings.to_env()
    assert env["CSTOR_API_PORT"] == "9001"
    assert Settings.from_env(env) == settings


def test_the_event_stores_variables_come_from_the_database_url() -> None:
    settings = Settings(database_url="postgresql://cstor:p%40ss%3Aword@db.internal:6543/events")
    env = settings.eventsourcing_env()
    assert (env["POSTGRES_HOST"], env["POSTGRES_PORT"], env["POSTGRES_DBNAME"]) == (
        "db.internal",
        "6543",
        "events",
    )
    # The password is given as it is, not as the URL had to write it
    assert (env["POSTGRES_USER"], env["POSTGRES_PASSWORD"]) == ("cstor", "p@ss:word")


def test_a_database_url_without_details_falls_back_to_the_local_defaults() -> None:
    env = Settings(database_url="postgresql://").eventsourcing_env()
    assert (env["POSTGRES_HOST"], env["POSTGRES_PORT"], env["POSTGRES_DBNAME"]) == (
        "127.0.0.1",
        "5432",
        "cstor",
    )
    assert (env["POSTGRES_USER"], env["POSTGRES_PASSWORD"]) == ("postgres", "")


def test_parts_of_s3s_largest_size_are_accepted() -> None:
    env = {"CSTOR_TRANSFER_PART_SIZE": str(5 * 1024**3), "CSTOR_SERVER_COPY_PART_SIZE": "1"}
    settings = Settings.from_env(env)
    assert (settings.transfer_part_size, settings.server_copy_part_size) == (5 * 1024**3, 1)


def test_a_setting_of_a_few_values_is_refused_naming_them() -> None:
    with pytest.raises(SettingsError, match=r"CSTOR_LOG_FORMAT \(it takes 'text' or 'json'\)"):
        Settings.from_env({"CSTOR_LOG_FORMAT": "xml"})
    with pytest.raises(SettingsError, match="it takes 'postgres' or 'aws-secrets-manager'"):
        Settings.from_env({"CSTOR_SECRETS_BACKEND": "vault"})


def test_the_stream_keeps_a_week_of_any_size_unless_told_otherwise() -> None:
    assert stream.StreamLimits.of(Settings()) == stream.StreamLimits(
        duplicate_window=120.0, max_age=7 * 24 * 3600.0, max_bytes=-1, replicas=1
    )
    limits = stream.StreamLimits.of(
        Settings.from_env({"CSTOR_STREAM_MAX_AGE": "0", "CSTOR_STREAM_MAX_BYTES": "1073741824"})
    )
    assert (limits.max_age, limits.max_bytes) == (0.0, 1024**3)  # 0: for ever


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"CSTOR_STREAM_MAX_BYTES": "0"}, "CSTOR_STREAM_MAX_BYTES: 0 is too small a stream"),
        ({"CSTOR_STREAM_MAX_BYTES": "-2"}, "-1 is no limit, else at least 1048576"),
        ({"CSTOR_STREAM_MAX_AGE": "60"}, "CSTOR_STREAM_MAX_AGE: 60 s is shorter than"
                                         " CSTOR_STREAM_DUPLICATE_WINDOW \\(120 s\\)"),
    ],
)  # fmt: skip
def test_stream_limits_jetstream_would_refuse_are_refused_at_the_start(
    environ: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(environ)


def test_the_nats_url_is_one_server_or_a_clusters_separated_by_commas() -> None:
    assert Settings().nats_servers() == ["nats://127.0.0.1:4222"]
    settings = Settings.from_env(
        {"CSTOR_NATS_URL": "nats://n1:4222, nats://n2:4222,tls://n3.example:4223"}
    )
    assert settings.nats_servers() == ["nats://n1:4222", "nats://n2:4222", "tls://n3.example:4223"]


@pytest.mark.parametrize(
    "entry", ["n2:4222", "http://n2:4222", "nats://n2", "nats://n2:port", "nats://:4222", ""]
)
def test_a_nats_server_that_is_no_url_stops_the_start_naming_the_variable(entry: str) -> None:
    with pytest.raises(SettingsError, match=f"CSTOR_NATS_URL: '{entry}' is not a NATS server"):
        Settings.from_env({"CSTOR_NATS_URL": f"nats://n1:4222,{entry}"})


def test_the_stream_has_one_replica_unless_told_otherwise() -> None:
    assert stream.StreamLimits.of(Settings()).replicas == 1
    settings = Settings.from_env({"CSTOR_STREAM_REPLICAS": "3"})
    assert stream.StreamLimits.of(settings).replicas == 3
    for value in ("0", "6"):
        with pytest.raises(SettingsError, match="CSTOR_STREAM_REPLICAS"):
            Settings.from_env({"CSTOR_STREAM_REPLICAS": value})
