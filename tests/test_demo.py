"""The demo's wiring: a simulated provider behind every provider the catalog uses."""

from __future__ import annotations

from typing import Any

from gateway_support import HELLO
from tokenmux.demo import demo_config, simulated_providers


def test_the_simulator_serves_every_provider_the_catalog_uses(gateway_factory: Any, sim: Any) -> None:
    slugs = simulated_providers()
    gateway = gateway_factory(demo_config(sim.url, slugs))
    catalog = gateway.app.catalog
    used = {e.provider for m in catalog.models.values() for e in m.endpoints}
    assert used <= set(slugs) == set(gateway.app.providers)
    client = gateway.openai()
    for slug in sorted(used):
        model = next(
            m
            for m in catalog.models.values()
            if not m.embedding and any(e.provider == slug for e in m.endpoints)
        )
        completion = client.chat.completions.create(
            model=model.id, messages=HELLO, max_tokens=5, extra_body={"provider": {"only": [slug]}}
        )
        assert completion.model == model.id
        assert (completion.model_extra or {})["provider"] == slug
