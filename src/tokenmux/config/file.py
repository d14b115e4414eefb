"""Reading the configuration file: YAML, with ``${VAR}`` replaced by the environment variable VAR."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from tokenmux.config.problems import ConfigError

CONFIG_FILE_ENV = "TOKENMUX_CONFIG"
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand_vars(value: Any, env: Mapping[str, str]) -> Any:
    """Replace ``${VAR}`` in every string of a parsed YAML document; a variable not set is an error."""
    if isinstance(value, str):

        def sub(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in env:
                raise ConfigError(
                    f"the configuration uses ${{{name}}}, but the environment variable {name} is not set"
                )
            return env[name]

        return _VAR.sub(sub, value)
    if isinstance(value, dict):
        return {k: expand_vars(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_vars(v, env) for v in value]
    return value


def read_config(flag: str | None, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The configuration file named by ``--config``, else by ``TOKENMUX_CONFIG``; ``{}`` when neither
    names one."""
    env = os.environ if env is None else env
    path = flag or env.get(CONFIG_FILE_ENV)
    return read_config_file(path, env) if path else {}


def read_config_file(path: str | Path, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The file's YAML mapping with variables expanded; ConfigError (one line) when it cannot be used."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read the configuration file {p}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{p} is not UTF-8 text") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{p} is not valid YAML: {_yaml_problem(e)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{p} must hold a mapping with keys such as 'providers' and 'gateway'")
    expanded: dict[str, Any] = expand_vars(data, os.environ if env is None else env)
    return expanded


def _yaml_problem(error: yaml.YAMLError) -> str:
    """PyYAML's several-line report as one line: the problem and where."""
    if isinstance(error, yaml.MarkedYAMLError) and error.problem_mark is not None:
        mark = error.problem_mark
        return f"{error.problem or error.context} at line {mark.line + 1}, column {mark.column + 1}"
    return " ".join(str(error).split())
