"""Settings: every TETHER_* variable read in one place, with defaults, flags on top, and
a UsageError naming a variable whose value does not parse."""
from __future__ import annotations

import dataclasses

import pytest

from tether.errors import UsageError
from tether.settings import Settings


def test_defaults_when_nothing_is_set():
    s = Settings.from_env({})
    assert (s.db, s.lease_seconds, s.max_recoveries, s.secret_key) == (None, 30.0, 5, None)
    assert (s.api_tokens, s.api_tokens_file, s.allowed_tools) == ("", None, None)


def test_values_from_the_environment_and_flags_on_top():
    env = {"TETHER_DB": "memory://", "TETHER_LEASE_SECONDS": "2.5", "TETHER_MAX_RECOVERIES": " 0 ",
           "TETHER_SECRET_KEY": "k", "TETHER_API_TOKENS": "read:12345678", "TETHER_ALLOWED_TOOLS": "shell"}
    s = Settings.from_env(env)
    assert (s.db, s.lease_seconds, s.max_recoveries, s.secret_key) == ("memory://", 2.5, 0, "k")
    assert (s.api_tokens, s.allowed_tools) == ("read:12345678", "shell")
    assert Settings.from_env(env, db="sqlite:///x.db", lease_seconds=None).db == "sqlite:///x.db"
    assert Settings.from_env({"TETHER_LEASE_SECONDS": "  "}).lease_seconds == 30.0
    assert Settings.from_env({}).blobs is None
    for url in ("file:///var/tether/blobs", "s3://bucket", "s3://bucket/some/prefix"):
        assert Settings.from_env({"TETHER_BLOBS": url}).blobs == url


def test_settings_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Settings().db = "memory://"  # type: ignore[misc]


@pytest.mark.parametrize("name, value, accepts", [
    ("TETHER_LEASE_SECONDS", "abc", "a number of seconds > 0"),
    ("TETHER_LEASE_SECONDS", "0", "a number of seconds > 0"),
    ("TETHER_LEASE_SECONDS", "nan", "a number of seconds > 0"),
    ("TETHER_MAX_RECOVERIES", "-1", "a whole number >= 0"),
    ("TETHER_MAX_RECOVERIES", "2.5", "a whole number >= 0"),
    ("TETHER_BLOBS", "/tmp/blobs", "file:///absolute/path or s3://bucket/prefix"),
    ("TETHER_BLOBS", "file://relative/blobs", "file:///absolute/path or s3://bucket/prefix"),
    ("TETHER_BLOBS", "s3:///no-bucket", "file:///absolute/path or s3://bucket/prefix"),
    ("TETHER_BLOBS", "gs://bucket", "file:///absolute/path or s3://bucket/prefix"),
])
def test_a_bad_value_names_the_variable_and_what_it_accepts(name, value, accepts):
    with pytest.raises(UsageError) as caught:
        Settings.from_env({name: value})
    assert str(caught.value).startswith(f"{name} must be {accepts}, not {value!r}")
    assert caught.value.exit_code == 2
