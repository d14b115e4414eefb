"""The configuration file: its shape, the environment's part in it, and what a mistake in it says."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tokenmux.catalog import load_catalog
from tokenmux.config import (
    ConfigError,
    Settings,
    build_settings,
    database_url,
    decode_document,
    read_config,
    read_config_file,
    redis_url,
)
from tokenmux.providers.azure import AzureSettings

CATALOG = load_catalog()


def settings(document: dict[str, Any], **env: str) -> Settings:
    return build_settings(document, CATALOG, env=env)


def refused(document: dict[str, Any], **env: str) -> str:
    with pytest.raises(ConfigError) as caught:
        settings(document, **env)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_a_mistyped_provider_setting_is_refused_naming_its_path() -> None:
    message = refused({"providers": {"openai": {"api_kye": "sk-live-secret"}}})
    assert message.startswith("unknown setting providers.openai.api_kye; known: kind, base_url, api_key")
    assert "sk-live-secret" not in message


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"gateway": {"cooldown_s": "ten"}}, "gateway.cooldown_s must be a number, got text"),
        ({"gateway": {"cooldown_s": True}}, "gateway.cooldown_s must be a number, got true or false"),
        ({"gateway": {"request_timeout_s": 0}}, "gateway.request_timeout_s must be a number > 0.0"),
        ({"gateway": {"circuit_failures": 2.5}}, "gateway.circuit_failures must be a whole number"),
        (
            {"gateway": {"http_client": "h2"}},
            "gateway.http_client must be one of 'http1', 'aiohttp', got 'h2'",
        ),
        ({"gateway": {"cooldown": 3}}, "unknown setting gateway.cooldown; known: request_timeout_s,"),
        ({"gateway": ["cooldown_s"]}, "gateway must be a mapping, got a list"),
        ({"gateway": {"cors": ["https://app.example"]}}, "gateway.cors must be a mapping, got a list"),
        (
            {"gatway": {}},
            "unknown setting gatway; known: providers, catalog, aliases, gateway, database, redis",
        ),
        ({"providers": ["openai"]}, "providers must be a mapping, got a list"),
        ({"providers": {"openai": "sk-1"}}, "providers.openai must be a mapping, got text"),
        ({"providers": {"openai": {"timeout_s": -1}}}, "providers.openai.timeout_s must be a number > 0.0"),
        ({"providers": {"openai": {"api_key": 1234}}}, "providers.openai.api_key must be text, got a whole"),
        (
            {"providers": {"azure": {"base_url": "https://r.example", "deployments": {"gpt-4.1-nano": 7}}}},
            "every value of providers.azure.deployments must be text, got a whole number",
        ),
        ({"providers": {1: {}}}, "providers has a key that is not text"),
        ({"redis": "localhost:6379"}, "the Redis URL must start with redis://, rediss:// or unix://, not 'l"),
    ],
)
def test_wrong_values_are_refused_naming_the_setting(document: dict[str, Any], expected: str) -> None:
    assert refused(document).startswith(expected)


def test_an_unquoted_date_is_refused_with_the_fix() -> None:
    import datetime

    section = {"base_url": "https://r.example", "api_version": datetime.date(2024, 10, 21)}
    message = refused({"providers": {"azure": section}})
    assert (
        message
        == 'providers.azure.api_version must be text, got date (write it in quotes, e.g. "2024-10-21")'
    )


def test_a_header_with_a_line_break_is_refused() -> None:
    message = refused({"providers": {"openai": {"headers": {"x-org": "a\r\nx-admin: 1"}}}})
    assert message == "providers.openai.headers.x-org must not contain a line break or NUL"


def test_defaults_and_written_values() -> None:
    empty = settings({"gateway": None, "providers": None})
    assert empty.gateway.request_timeout_s == 300.0 and empty.gateway.http_client == "http1"
    assert empty.providers == {} and empty.redis_url is None
    written = settings({"gateway": {"cooldown_s": 3, "http_client": "aiohttp", "max_body_bytes": "2048"}})
    assert written.gateway.cooldown_s == 3.0 and written.gateway.http_client == "aiohttp"
    assert written.gateway.max_body_bytes == 2048  # as ${VAR} gives it: text


def test_providers_fill_in_from_the_catalog_and_the_environment() -> None:
    configured = settings(
        {
            "providers": {
                "openai": None,
                "azure": {"base_url": "https://r.openai.azure.com/", "deployments": {"gpt-4.1-nano": "nano"}},
                "local": {"base_url": "http://127.0.0.1:8000/v1", "timeout_s": 5},
            },
            "gateway": {"attempt_timeout_s": 40},
        },
        OPENAI_API_KEY="sk-env",
        AZURE_OPENAI_API_KEY="az-env",
        GROQ_API_KEY="gsk-env",
    )
    openai, azure, local = (configured.providers[s] for s in ("openai", "azure", "local"))
    assert (openai.kind, openai.base_url, openai.api_key) == ("openai", "https://api.openai.com/v1", "sk-env")
    assert (azure.base_url, azure.api_key, azure.timeout_s) == ("https://r.openai.azure.com", "az-env", 40.0)
    assert azure.settings == AzureSettings(
        base_url="https://r.openai.azure.com/", deployments={"gpt-4.1-nano": "nano"}
    )  # Azure's own settings, as written; its adapter defaults the API version
    assert (local.kind, local.api_key, local.timeout_s) == ("openai-compatible", None, 5.0)
    # A catalog provider whose key is in the environment needs no entry.
    assert configured.providers["groq"].base_url == "https://api.groq.com/openai/v1"
    assert "anthropic" not in configured.providers


def test_the_azure_api_version_and_the_admin_key_come_from_the_environment() -> None:
    configured = settings(
        {"providers": {"azure": {"base_url": "https://r.example", "api_key": "k"}}},
        AZURE_OPENAI_API_VERSION="2025-01-01-preview",
        TOKENMUX_ADMIN_KEY="admin-from-env",
    )
    azure = configured.providers["azure"].settings
    assert isinstance(azure, AzureSettings) and azure.api_version == "2025-01-01-preview"
    assert configured.gateway.admin_key == "admin-from-env"
    written = settings({"gateway": {"admin_key": "written"}}, TOKENMUX_ADMIN_KEY="admin-from-env")
    assert written.gateway.admin_key == "written"


def test_a_provider_without_a_base_url_says_where_to_find_it() -> None:
    assert refused({"providers": {"azure": {"api_key": "k"}}}).startswith("providers.azure needs a base_url")


def test_variables_are_expanded_and_a_missing_one_is_named(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text('gateway: {cooldown_s: "${COOL}", admin_key: "pre-${ADMIN}"}\n')
    assert read_config_file(path, env={"COOL": "4", "ADMIN": "x"}) == {
        "gateway": {"cooldown_s": "4", "admin_key": "pre-x"}
    }
    assert settings(read_config_file(path, env={"COOL": "4", "ADMIN": "x"})).gateway.cooldown_s == 4.0
    with pytest.raises(ConfigError, match=r"uses \$\{ADMIN\}, but the environment variable ADMIN is not set"):
        read_config_file(path, env={"COOL": "4"})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("providers: {openai: [}\n", "is not valid YAML: expected the node content, but found '}' at line 1"),
        ("- a\n- b\n", "must hold a mapping with keys such as 'providers' and 'gateway'"),
    ],
)
def test_a_file_that_is_not_a_mapping_is_refused_in_one_line(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        read_config_file(path, env={})
    assert expected in str(caught.value) and "\n" not in str(caught.value)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read the configuration file .*nope.yaml: No such file"):
        read_config_file(tmp_path / "nope.yaml", env={})


def test_aliases_must_map_names_to_model_names() -> None:
    with pytest.raises(ConfigError, match="aliases"):
        decode_document({"aliases": {"sonnet": ["anthropic/claude-sonnet-4.5"]}})
    assert decode_document({"aliases": {"sonnet": "anthropic/claude-sonnet-4.5"}}).aliases == {
        "sonnet": "anthropic/claude-sonnet-4.5"
    }


def test_database_and_redis_urls_come_from_the_flag_the_environment_the_file_or_the_default() -> None:
    document = decode_document({"database": "sqlite:///file.db", "redis": "redis://file:6379/0"})
    env = {"TOKENMUX_DATABASE_URL": "sqlite:///env.db", "TOKENMUX_REDIS_URL": "redis://env:6379/0"}
    assert database_url("sqlite:///flag.db", document, env) == "sqlite:///flag.db"
    assert database_url(None, document, env) == "sqlite:///env.db"
    assert database_url(None, document, {}) == "sqlite:///file.db"
    assert database_url(None, None, {}) == "sqlite:///tokenmux.db"
    assert database_url(None, None, {}, default="sqlite:///demo.db") == "sqlite:///demo.db"
    assert redis_url("redis://flag:6379/0", document, env) == "redis://flag:6379/0"
    assert redis_url(None, document, env) == "redis://env:6379/0"
    assert redis_url(None, document, {}) == "redis://file:6379/0"
    assert redis_url(None, None, {}) is None
    # build_settings resolves them the same way
    resolved = build_settings(document, CATALOG, env={"TOKENMUX_REDIS_URL": "redis://env:6379/0"})
    assert (resolved.database_url, resolved.redis_url) == ("sqlite:///file.db", "redis://env:6379/0")


def test_a_redis_url_without_its_scheme_is_refused_without_showing_a_password() -> None:
    with pytest.raises(ConfigError) as caught:
        redis_url(None, decode_document({"redis": "cache.internal:6379?password=hunter2"}), {})
    assert str(caught.value) == (
        "the Redis URL must start with redis://, rediss:// or unix://, not 'cache.internal'"
    )


def test_the_file_is_named_by_the_flag_or_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("database: sqlite:///from-file.db\n")
    assert read_config(str(path), env={}) == {"database": "sqlite:///from-file.db"}
    assert read_config(None, env={"TOKENMUX_CONFIG": str(path)}) == {"database": "sqlite:///from-file.db"}
    assert read_config(None, env={}) == {}
