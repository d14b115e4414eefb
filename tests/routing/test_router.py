from __future__ import annotations

from typing import Any

import pytest

from clock_support import Clock
from tokenmux.catalog.model import Catalog, DataPolicy, Endpoint, Model, Price, ProviderInfo
from tokenmux.errors import InvalidRequest, ModelNotFound, PayloadTooLarge, ProviderRejected
from tokenmux.routing import tokens
from tokenmux.routing.health import HealthBoard
from tokenmux.routing.router import Router, adapt_params, blocked_last
from tokenmux.types import ChatRequest, ProviderPreferences

BASE_PARAMS = frozenset({"max_tokens", "max_completion_tokens", "temperature", "top_p", "stop"})


def ep(
    model: str,
    provider: str,
    inp: float,
    out: float,
    *,
    params: frozenset[str] = BASE_PARAMS,
    training: bool = False,
    retention: int | None = 0,
    context: int = 100_000,
    max_out: int = 8_000,
) -> Endpoint:
    return Endpoint(
        model_id=model,
        provider=provider,
        upstream_model=model.split("/")[1],
        context_length=context,
        max_output=max_out,
        price=Price(input=inp, output=out),
        supported_parameters=params,
        data_policy=DataPolicy(prompt_training=training, retention_days=retention),
    )


def model(mid: str, *endpoints: Endpoint) -> Model:
    return Model(
        id=mid,
        name=mid,
        author=mid.split("/")[0],
        description="",
        created="2025-01-01",
        input_modalities=("text",),
        output_modalities=("text",),
        context_length=max(e.context_length for e in endpoints),
        max_output=max(e.max_output for e in endpoints),
        tokenizer="o200k",
        endpoints=endpoints,
        supported_parameters=frozenset().union(*(e.supported_parameters for e in endpoints)),
    )


CATALOG = Catalog(
    models={
        "acme/big": model(
            "acme/big",
            ep("acme/big", "cheap", 1.0, 2.0, training=True, retention=None),
            ep("acme/big", "pricey", 3.0, 6.0, params=BASE_PARAMS | {"logit_bias", "seed"}, retention=30),
            ep("acme/big", "private", 2.0, 4.0, context=8_000, max_out=1_000),
        ),
        "acme/small": model("acme/small", ep("acme/small", "cheap", 0.1, 0.2)),
        "acme/lonely": model("acme/lonely", ep("acme/lonely", "nowhere", 0.1, 0.2)),
    },
    providers={
        s: ProviderInfo(slug=s, name=s, kind="openai-compatible") for s in ("cheap", "pricey", "private")
    },
    prices_as_of="2026-11-26",
)


def router(health: HealthBoard | None = None) -> Router:
    return Router(CATALOG, {"cheap", "pricey", "private"}, health or HealthBoard())


def request(
    model: str = "acme/big",
    *,
    params: dict[str, Any] | None = None,
    text: str = "hi",
    max_out: int | None = None,
    fallback: tuple[str, ...] = (),
    **prefs: Any,
) -> ChatRequest:
    return ChatRequest(
        model=model,
        messages=[{"role": "user", "content": text}],
        params=params or {},
        fallback_models=fallback,
        provider=ProviderPreferences(**prefs),
        max_output_tokens=max_out,
        body_bytes=len(text) + 60,
    )


def providers(plan: list[Any]) -> list[str]:
    return [c.endpoint.provider for c in plan]


def test_default_order_is_the_score_cheapest_first_when_unmeasured() -> None:
    assert providers(router().plan(request())) == ["cheap", "private", "pricey"]


def test_measured_latency_moves_an_endpoint_up() -> None:
    health = HealthBoard()
    health.record_success("acme/big@cheap", ttft_ms=9000, throughput_tps=None)
    health.record_success("acme/big@private", ttft_ms=100, throughput_tps=None)
    # cheap: 1.75 * (1 + 9) = 17.5; private: 2.5 * 1.1 = 2.75; pricey (unmeasured 1 s): 3.75 * 2 = 7.5
    assert providers(router(health).plan(request())) == ["private", "pricey", "cheap"]


def test_order_comes_first_then_the_rest() -> None:
    assert providers(router().plan(request(order=("pricey",)))) == ["pricey", "cheap", "private"]


def test_only_and_ignore() -> None:
    assert providers(router().plan(request(only=frozenset({"pricey", "private"})))) == ["private", "pricey"]
    assert providers(router().plan(request(ignore=frozenset({"cheap"})))) == ["private", "pricey"]


def test_data_policy_filters() -> None:
    assert "cheap" not in providers(router().plan(request(data_collection="deny")))
    assert providers(router().plan(request(zdr=True))) == ["private"]


def test_max_price() -> None:
    plan = router().plan(request(max_price_prompt=2.5, max_price_completion=5.0))
    assert providers(plan) == ["cheap", "private"]


def test_sort_price_and_suffixes() -> None:
    health = HealthBoard()
    health.record_success("acme/big@pricey", ttft_ms=50, throughput_tps=300)
    health.record_success("acme/big@cheap", ttft_ms=50, throughput_tps=10)
    r = router(health)
    assert providers(r.plan(request("acme/big:floor"))) == ["cheap", "private", "pricey"]
    assert providers(r.plan(request("acme/big:nitro")))[:2] == ["pricey", "cheap"]
    assert providers(r.plan(request(sort="latency")))[:2] in (["cheap", "pricey"], ["pricey", "cheap"])


def test_unsupported_params_are_dropped_or_the_endpoint_skipped() -> None:
    plan = router().plan(request(params={"logit_bias": {"1": 1}, "temperature": 0.5}))
    by = {c.endpoint.provider: c for c in plan}
    assert by["cheap"].dropped == ("logit_bias",) and by["cheap"].params == {"temperature": 0.5}
    assert by["pricey"].dropped == () and "logit_bias" in by["pricey"].params
    strict = router().plan(request(params={"logit_bias": {"1": 1}}, require_parameters=True))
    assert providers(strict) == ["pricey"]


def test_require_parameters_with_no_match_explains_why() -> None:
    with pytest.raises(InvalidRequest) as info:
        router().plan(request(params={"tools": []}, require_parameters=True))
    assert "does not support tools" in info.value.message


def test_max_tokens_is_renamed_for_an_endpoint_that_knows_only_the_other_name() -> None:
    sent, dropped = adapt_params({"max_tokens": 5}, frozenset({"max_completion_tokens"}))
    assert sent == {"max_completion_tokens": 5} and dropped == ()
    same = {"temperature": 1}
    assert adapt_params(same, BASE_PARAMS)[0] is same  # nothing to change: no copy


def test_output_larger_than_an_endpoints_max_skips_it_and_all_of_them_is_400_naming_the_limit() -> None:
    assert "private" not in providers(router().plan(request(max_out=5_000)))
    too_much = request(max_out=50_000)
    too_much.max_output_param = "max_tokens"  # the client's own name for it
    with pytest.raises(InvalidRequest) as info:
        router().plan(too_much)
    assert info.value.status == 400 and info.value.param == "max_tokens"
    assert "set max_tokens to 8,000 or less" in info.value.message


def test_output_over_some_maxima_and_a_prompt_over_the_other_contexts_is_413() -> None:
    long_text = "lorem ipsum " * 50_000  # ~100k tokens: over every context
    # Contexts of two sizes: counting decides whether the larger one fits (it does not).
    wider = router_of(
        model(
            "acme/big",
            ep("acme/big", "cheap", 1.0, 2.0),
            ep("acme/big", "pricey", 3.0, 6.0, context=102_000),
            ep("acme/big", "private", 2.0, 4.0, context=8_000, max_out=1_000),
        )
    )
    with pytest.raises(PayloadTooLarge) as info:
        wider.plan(request(text=long_text, max_out=5_000))
    assert info.value.status == 413 and "lower max_completion_tokens" in info.value.message


def test_prompt_larger_than_a_context_skips_that_endpoint() -> None:
    long_text = "lorem ipsum " * 10_000  # ~20k tokens: over private's 8k context, under the others' 100k
    tokens.clear_cache()
    counted = tokens.tokenized_chars()
    assert providers(router().plan(request(text=long_text))) == ["cheap", "pricey"]
    assert tokens.tokenized_chars() > counted  # the byte bound leaves private's fit open: counted


def test_a_prompt_is_not_counted_when_the_count_cannot_change_the_plan() -> None:
    """Every endpoint has the same context: whether a 4 MB prompt fits, it fits them all or none (then the
    provider refuses it), so it is planned without counting, as is one over every context."""
    long = router_of(
        model(
            "acme/big",
            ep("acme/big", "cheap", 1.0, 2.0, context=1_047_576),
            ep("acme/big", "pricey", 3.0, 6.0, context=1_047_576),
        )
    )
    counted = tokens.tokenized_chars()
    four_mb = "lorem ipsum dolor sit amet, " * 150_000
    assert providers(long.plan(request(text=four_mb))) == ["cheap", "pricey"]
    assert providers(router().plan(request(text="lorem ipsum " * 50_000, max_out=5_000))) == [
        "cheap",
        "pricey",
    ]
    assert tokens.tokenized_chars() == counted


def router_of(*models: Model) -> Router:
    catalog = Catalog(
        models={m.id: m for m in models},
        providers={
            s: ProviderInfo(slug=s, name=s, kind="openai-compatible") for s in ("cheap", "pricey", "private")
        },
        prices_as_of="2026-11-26",
    )
    return Router(catalog, {"cheap", "pricey", "private"}, HealthBoard())


def test_unknown_model_names_close_matches() -> None:
    with pytest.raises(ModelNotFound) as info:
        router().plan(request("acme/bgi"))
    assert "acme/big" in info.value.message


def test_model_without_a_configured_provider() -> None:
    with pytest.raises(ModelNotFound) as info:
        router().plan(request("acme/lonely"))
    assert "nowhere" in info.value.message and info.value.code == "no_configured_provider"


def test_fallback_models_follow_in_order() -> None:
    plan = router().plan(request(fallback=("acme/small",)))
    assert [(c.model.id, c.endpoint.provider) for c in plan][-1] == ("acme/small", "cheap")


def test_allow_fallbacks_false_keeps_the_first_or_the_named_providers() -> None:
    assert providers(router().plan(request(allow_fallbacks=False))) == ["cheap"]
    plan = router().plan(
        request(allow_fallbacks=False, order=("pricey", "private"), fallback=("acme/small",))
    )
    assert providers(plan) == ["pricey", "private"]


def test_endpoints_cooling_down_come_last() -> None:
    health = HealthBoard()
    health.record_failure("acme/big@cheap", ProviderRejected("busy", upstream_status=429, retry_after=60))
    assert providers(router(health).plan(request())) == ["private", "pricey", "cheap"]


def test_a_route_worked_out_once_still_fits_and_adapts_each_request_on_its_own() -> None:
    # One router, requests of one kind (model, preferences, parameter names): the prompt and the values
    # of the parameters still decide per request.
    r = router()
    long_text = "lorem ipsum " * 10_000
    assert providers(r.plan(request(text=long_text))) == ["cheap", "pricey"]
    assert providers(r.plan(request(text="hi"))) == ["cheap", "private", "pricey"]
    assert providers(r.plan(request(text=long_text))) == ["cheap", "pricey"]
    first = {
        c.endpoint.provider: c for c in r.plan(request(params={"logit_bias": {"1": 1}, "temperature": 0.1}))
    }
    second = {
        c.endpoint.provider: c for c in r.plan(request(params={"logit_bias": {"2": 2}, "temperature": 0.9}))
    }
    assert first["cheap"].params == {"temperature": 0.1} and second["cheap"].params == {"temperature": 0.9}
    assert second["pricey"].params == {"logit_bias": {"2": 2}, "temperature": 0.9}
    assert providers(r.plan(request(params={"logit_bias": {"3": 3}}, require_parameters=True))) == ["pricey"]
    assert providers(r.plan(request(params={"logit_bias": {"3": 3}}))) == ["cheap", "private", "pricey"]


def test_reasons_keep_the_endpoints_order_when_the_prompt_and_the_preferences_exclude_them() -> None:
    long_text = "lorem ipsum " * 100_000  # too large for every endpoint
    with pytest.raises(InvalidRequest) as info:
        router().plan(request(text=long_text, ignore=frozenset({"pricey"})))
    reasons = info.value.message
    assert (
        reasons.index("at cheap")
        < reasons.index("at pricey: in provider.ignore")
        < reasons.index("at private")
    )


def test_blocked_endpoints_come_last_soonest_unblocked_first_and_are_never_left_out() -> None:
    clock = Clock()
    health = HealthBoard(clock=clock)
    plan = router(health).plan(request(fallback=("acme/small",)))
    keys = [c.endpoint.key for c in plan]
    assert keys == ["acme/big@cheap", "acme/big@private", "acme/big@pricey", "acme/small@cheap"]
    assert blocked_last(plan, health.blocked_until) is plan  # nothing blocked: the plan as it is
    health.record_failure("acme/big@cheap", ProviderRejected("busy", upstream_status=429, retry_after=60))
    health.record_failure("acme/big@private", ProviderRejected("busy", upstream_status=429, retry_after=5))
    # Free endpoints first, the fallback model's included; then the blocked ones, soonest first.
    assert [c.endpoint.key for c in blocked_last(plan, health.blocked_until)] == [
        "acme/big@pricey",
        "acme/small@cheap",
        "acme/big@private",
        "acme/big@cheap",
    ]
    for key in keys:
        health.record_failure(key, ProviderRejected("busy", upstream_status=429, retry_after=30))
    everything_blocked = blocked_last(plan, health.blocked_until)
    assert len(everything_blocked) == len(plan)  # all of them still tried
    assert [c.endpoint.key for c in everything_blocked][-1] == "acme/big@cheap"  # its block ends last
