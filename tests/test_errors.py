"""The one exception tree: every exception the gateway defines lives in ``errors.py`` and is drawn in its
docstring. (The simulator is a separate program, the fake providers, with errors of its own.)"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import tokenmux
from tokenmux import errors


def gateway_modules() -> list[str]:
    return [
        m.name
        for m in pkgutil.walk_packages(tokenmux.__path__, "tokenmux.")
        if not m.name.startswith("tokenmux.simulator")
    ]


def test_every_exception_of_the_gateway_is_in_errors_and_drawn_in_its_docstring() -> None:
    defined_elsewhere = []
    for name in gateway_modules():
        module = importlib.import_module(name)
        for attr, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == name
                and name != "tokenmux.errors"
            ):
                defined_elsewhere.append(f"{name}.{attr}")
    assert defined_elsewhere == []
    assert errors.__doc__ is not None
    drawn = errors.__doc__
    for attr, value in vars(errors).items():
        if (
            inspect.isclass(value)
            and issubclass(value, BaseException)
            and value.__module__ == "tokenmux.errors"
        ):
            assert re.search(rf"^    (.*── )?{attr}\b", drawn, re.M), (
                f"{attr} is not drawn in errors.py's tree"
            )
