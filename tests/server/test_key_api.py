"""The management API: admin keys (stored or configured) manage keys; user keys get 403 everywhere."""

from __future__ import annotations

import time
from typing import Any

import httpx
import openai
import pytest

from gateway_support import HELLO, NANO, sim_config
from tokenmux.store.keys import new_key

ADMIN_ROUTES = [
    ("GET", "/api/v1/keys", None),
    ("POST", "/api/v1/keys", {"name": "x"}),
    ("GET", "/api/v1/keys/x", None),
    ("PATCH", "/api/v1/keys/x", {"rpm": 1}),
    ("DELETE", "/api/v1/keys/x", None),
    ("GET", "/api/v1/usage", None),
]


def call(gw: Any, key: str, method: str, path: str, body: Any = None) -> httpx.Response:
    return httpx.request(
        method, f"{gw.url}{path}", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=10
    )


@pytest.fixture
def admin_gw(gateway_factory: Any, sim: Any) -> Any:
    gw = gateway_factory(sim_config(sim.url, admin_key="configured-admin-secret-123"))
    return gw


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ROUTES)
def test_a_user_key_gets_403_on_every_management_route(
    admin_gw: Any, method: str, path: str, body: Any
) -> None:
    r = call(admin_gw, admin_gw.key, method, path, body)
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "admin_required"


def test_the_configured_admin_key_manages_keys_end_to_end(admin_gw: Any) -> None:
    admin = "configured-admin-secret-123"
    created = call(admin_gw, admin, "POST", "/api/v1/keys", {"name": "team-b", "credit": 1, "rpm": 30})
    assert created.status_code == 201, created.text
    secret = created.json()["key"]
    data = created.json()["data"]
    assert data["limits"]["credit"] == 1.0 and data["limits"]["rpm"] == 30 and "digest" not in data
    # The new key works, and what it spends shows in usage by key and by model.
    admin_gw.openai(secret).chat.completions.create(model=NANO, messages=HELLO, max_tokens=5)
    listed = call(admin_gw, admin, "GET", "/api/v1/keys").json()["data"]
    assert [k["name"] for k in listed] == ["test", "team-b"]
    assert secret not in str(listed)
    patched = call(admin_gw, admin, "PATCH", "/api/v1/keys/team-b", {"rpm": None, "models": ["openai/*"]})
    assert patched.status_code == 200
    assert patched.json()["data"]["limits"]["rpm"] is None
    assert patched.json()["data"]["limits"]["models"] == ["openai/*"]
    one = call(admin_gw, admin, "GET", f"/api/v1/keys/{data['id']}").json()["data"]
    assert one["usage"] > 0 and one["limit_remaining"] < 1.0

    def usage(by: str) -> list[dict[str, Any]]:
        for _ in range(50):  # the request log is written in the background, within ~50 ms
            rows = call(admin_gw, admin, "GET", f"/api/v1/usage?by={by}").json()["data"]
            if rows:
                return rows  # type: ignore[no-any-return]
            time.sleep(0.1)
        return []

    by_key = usage("key")
    assert by_key[0]["key"] == data["id"] and by_key[0]["name"] == "team-b" and by_key[0]["requests"] == 1
    by_model = usage("model")
    assert by_model[0]["model"] == NANO and by_model[0]["cost"] == pytest.approx(by_key[0]["cost"])
    revoked = call(admin_gw, admin, "DELETE", "/api/v1/keys/team-b")
    assert revoked.status_code == 200
    with pytest.raises(openai.AuthenticationError):
        admin_gw.openai(secret).chat.completions.create(model=NANO, messages=HELLO, max_tokens=5)
    assert call(admin_gw, admin, "DELETE", "/api/v1/keys/team-b").status_code == 404


def test_a_stored_admin_key_is_an_admin(gateway: Any) -> None:
    import asyncio

    from tokenmux.store.url import open_store

    async def create() -> str:
        secret, record = new_key("ops", is_admin=True)
        async with open_store(gateway.app.parts.settings.database_url) as store:
            await store.create_key(record)
        return secret

    admin = asyncio.run(create())
    assert call(gateway, admin, "GET", "/api/v1/keys").status_code == 200


def test_bad_management_input_is_a_400_naming_the_field(admin_gw: Any) -> None:
    admin = "configured-admin-secret-123"
    for body, param in [
        ({"name": "x", "credit": "lots"}, "credit"),
        ({"name": "x", "rpm": 0}, "rpm"),
        ({"name": "x", "period": "year", "budget": 1}, "period"),
        ({"name": "x", "colour": "red"}, "colour"),
        ({"credit": 1}, "name"),
        ({"name": "x\r\nX-Evil: 1"}, "name"),
    ]:
        r = call(admin_gw, admin, "POST", "/api/v1/keys", body)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["error"]["param"] == param
    r = httpx.post(
        f"{admin_gw.url}/api/v1/keys", content=b"[1,2", headers={"Authorization": f"Bearer {admin}"}
    )
    assert r.status_code == 400


def test_a_wrong_admin_key_is_a_401_that_does_not_echo_it(admin_gw: Any) -> None:
    r = call(admin_gw, "configured-admin-secret-124", "GET", "/api/v1/keys")
    assert r.status_code == 401 and "configured-admin-secret" not in r.text
