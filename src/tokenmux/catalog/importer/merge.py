"""Lay offers over catalog data: refresh what the table states, add what is new, keep everything else.

For each offer, in two passes:

1. offers that may add a model (the maker's own API, a router's list): an endpoint the catalog already
   has at that provider under that name gets the offer's prices, limits and snapshots; otherwise the
   offer becomes an endpoint of the model it names, or a new model;
2. hosts' offers: an endpoint the catalog has is refreshed as above; otherwise, when the host's name for
   the model finds exactly one catalog model ("accounts/fireworks/models/kimi-k2p5" -> moonshotai/kimi-k2.5),
   it becomes that model's endpoint at the host. A host's model the catalog does not know is left out.

What an offer does not state is kept: names, descriptions, data policies, parameters and protocols
written by hand, endpoints and models the table does not list (nothing is ever removed), and the prices
and limits of an endpoint with a ``source`` (figures taken from elsewhere, such as the seed model page).
An offer for a model retired by the date of the prices adds nothing. Limits are written once per model
where all its endpoints agree, and per endpoint where one differs; a host that gives its whole context as
the output limit gets the output limit of the maker's own API, where the model has one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from tokenmux.catalog.importer.files import CatalogData, ModelFile, file_for
from tokenmux.catalog.importer.offer import (
    AUTHOR_NAMES,
    AUTHOR_TOKENIZERS,
    FIRST_PARTY,
    Offer,
    describe,
    display_name,
)

_FIREWORKS_MODELS = "accounts/fireworks/models/"
# Hosts mark speed and precision variants in the name; the model is the same.
_VARIANT = re.compile(r"-(turbo|fp8|fp4|bf16|tput|instruct-basic|basic)$")


@dataclass(slots=True)
class Report:
    """What an import changed, for the person who reviews it."""

    models_added: list[str] = field(default_factory=list)
    endpoints_added: list[str] = field(default_factory=list)  # "model@provider"
    prices_changed: list[str] = field(default_factory=list)  # "model@provider: input 3 -> 2.5, ..."
    endpoints_refreshed: int = 0
    kept_by_source: list[str] = field(default_factory=list)  # endpoints whose figures come from elsewhere
    retired: list[str] = field(default_factory=list)  # offers left out: retired by the prices' date
    retired_kept: list[str] = field(default_factory=list)  # catalog endpoints the table says are retired
    unmatched: int = 0  # hosts' offers for models the catalog does not have
    not_listed: list[str] = field(default_factory=list)  # endpoints at the table's providers it lacks
    matched: set[str] = field(default_factory=set)  # catalog endpoints an offer was found for

    def lines(self) -> list[str]:
        out = [
            f"{len(self.models_added)} models added, {len(self.endpoints_added)} endpoints added, "
            f"{self.endpoints_refreshed} endpoints refreshed ({len(self.prices_changed)} with new prices), "
            f"{len(self.retired)} retired models left out, {self.unmatched} hosts' models not in the catalog"
        ]
        for title, items in (
            ("models added", self.models_added),
            ("endpoints added", self.endpoints_added),
            ("prices changed", self.prices_changed),
            ("figures kept (the endpoint names another source)", self.kept_by_source),
            (
                "retired by the table's date, kept in the catalog (remove by hand if unwanted)",
                self.retired_kept,
            ),
            ("not in the table, kept as they were", self.not_listed),
        ):
            if items:
                out.append(f"{title}:")
                out.extend(f"  {item}" for item in items)
        return out


class _Catalog:
    """The models of every file, indexed by id, by endpoint and by every name they answer to."""

    def __init__(self, data: CatalogData) -> None:
        self.data = data
        self.models: dict[str, tuple[ModelFile, dict[str, Any]]] = {}
        for model_file in data.files.values():
            for model in model_file.models:
                self.models[model["id"]] = (model_file, model)
        self.endpoints: dict[tuple[str, str], tuple[dict[str, Any], dict[str, Any]]] = {}
        self.names: dict[str, set[str]] = {}
        for _, model in self.models.values():
            self.index(model)

    def index(self, model: dict[str, Any]) -> None:
        model_id: str = model["id"]
        slug = model_id.split("/", 1)[1]
        for name in (model_id, slug):
            self.names.setdefault(name.lower(), set()).add(model_id)
        for endpoint in model.get("endpoints") or []:
            upstream = upstream_of(model, endpoint)
            self.endpoints[(endpoint["provider"], upstream.lower())] = (model, endpoint)
            for name in [upstream, *(endpoint.get("snapshots") or [])]:
                self.names.setdefault(name.lower(), set()).add(model_id)

    def add_model(self, model: dict[str, Any]) -> None:
        author = model["id"].split("/", 1)[0]
        name = file_for(author)
        model_file = self.data.files.get(name)
        if model_file is None:
            header = f"# {AUTHOR_NAMES.get(author, author)}'s models. Prices in USD per million tokens."
            model_file = self.data.files[name] = ModelFile(name, header, "", "")
        model_file.models.append(model)
        self.models[model["id"]] = (model_file, model)
        self.index(model)

    def add_endpoint(self, model: dict[str, Any], endpoint: dict[str, Any]) -> None:
        model.setdefault("endpoints", []).append(endpoint)
        self.index(model)

    def unique(self, name: str) -> str | None:
        ids = self.names.get(name.lower())
        return next(iter(ids)) if ids and len(ids) == 1 else None


def upstream_of(model: dict[str, Any], endpoint: dict[str, Any]) -> str:
    return str(endpoint.get("upstream_model") or model["id"].split("/", 1)[1])


def merge(data: CatalogData, offers: list[Offer], as_of: str, source: str) -> Report:
    """Lay ``offers`` over ``data`` (changed in place); files whose prices were refreshed or added get
    ``as_of`` and ``source`` as their ``prices_as_of`` and ``prices_source``."""
    catalog = _Catalog(data)
    report = Report()
    touched: set[str] = set()
    key = lambda o: (o.provider, o.upstream)  # noqa: E731 - the same order every run
    for offer in sorted((o for o in offers if o.creates), key=key):
        if not _refresh(catalog, offer, report, touched):
            _add(catalog, offer, report, touched)
    hosts = sorted((o for o in offers if not o.creates), key=key)
    # An endpoint a host pass adds brings its names (snapshots) that another host may use: a second
    # pass finds those, so that one run gives what running twice would.
    while hosts:
        hosts = _host_pass(catalog, hosts, report, touched)
    _not_listed(data, offers, report)
    for model_file in data.files.values():
        for model in model_file.models:
            _hoist_limits(model)
        if model_file.name in touched:
            model_file.prices_as_of, model_file.prices_source = as_of, source
    return report


def _host_pass(catalog: _Catalog, offers: list[Offer], report: Report, touched: set[str]) -> list[Offer]:
    """Refresh or add the hosts' endpoints; the offers left for another pass when this one added any."""
    best: dict[tuple[str, str], tuple[int, Offer]] = {}
    waiting: list[Offer] = []
    for offer in offers:
        if _refresh(catalog, offer, report, touched):
            continue
        if offer.deprecated:
            report.retired.append(f"{offer.provider}/{offer.upstream}")
            continue
        match = _host_match(catalog, offer)
        if match is None:
            waiting.append(offer)
            continue
        model_id, rank = match
        current = best.get((model_id, offer.provider))
        if current is None or rank < current[0]:
            best[(model_id, offer.provider)] = (rank, offer)
    added = False
    for (model_id, _), (_, offer) in sorted(best.items()):
        model_file, model = catalog.models[model_id]
        if any(e["provider"] == offer.provider for e in model.get("endpoints") or []):
            continue  # the host serves the model under another of its names
        _fill(catalog, model, offer)
        catalog.add_endpoint(model, _endpoint(offer, model, host=True))
        report.endpoints_added.append(f"{model_id}@{offer.provider}")
        touched.add(model_file.name)
        added = True
    if added:
        return waiting
    report.unmatched += len(waiting)
    return []


def _not_listed(data: CatalogData, offers: list[Offer], report: Report) -> None:
    """Endpoints at the providers the table covers that it did not mention: kept, and reported."""
    providers = {o.provider for o in offers}
    listed = report.matched | set(report.endpoints_added)
    added = set(report.models_added)
    for model_file in data.files.values():
        for model in model_file.models:
            if model["id"] in added:
                continue
            for endpoint in model.get("endpoints") or []:
                where = f"{model['id']}@{endpoint['provider']}"
                if endpoint["provider"] in providers and where not in listed:
                    report.not_listed.append(where)


def _refresh(catalog: _Catalog, offer: Offer, report: Report, touched: set[str]) -> bool:
    """Refresh the endpoint the catalog has for this offer; False when it has none."""
    found = catalog.endpoints.get((offer.provider, offer.upstream.lower()))
    if found is None:
        return False
    model, endpoint = found
    _fill(catalog, model, offer)
    if offer.deprecated:
        report.retired_kept.append(f"{model['id']}@{offer.provider}")
    snapshots = [
        s for s in offer.snapshots if s.lower() not in {x.lower() for x in endpoint.get("snapshots") or []}
    ]
    if snapshots:
        endpoint["snapshots"] = [*(endpoint.get("snapshots") or []), *snapshots]
        catalog.index(model)  # hosts may call the model by a snapshot's name
    where = f"{model['id']}@{offer.provider}"
    report.matched.add(where)
    if endpoint.get("source"):
        report.kept_by_source.append(f"{where} ({endpoint['source']})")
        return True
    before = dict(endpoint.get("price") or {})
    price = {**before, **offer.price}
    endpoint["price"] = price
    for name in ("context_length", "max_output"):
        value = getattr(offer, name)
        if value is not None:
            endpoint[name] = value
    report.endpoints_refreshed += 1
    changes = [
        f"{k} {float(before[k]):g} -> {float(price[k]):g}"
        for k in price
        if k != "tiers" and before.get(k) is not None and float(before[k]) != float(price[k])
    ]
    if changes:
        report.prices_changed.append(f"{where}: {', '.join(changes)}")
    touched.add(catalog.models[model["id"]][0].name)
    return True


def _add(catalog: _Catalog, offer: Offer, report: Report, touched: set[str]) -> None:
    if offer.deprecated:
        report.retired.append(f"{offer.provider}/{offer.upstream}")
        return
    model_id = offer.model_id if offer.model_id in catalog.models else catalog.unique(offer.upstream)
    if model_id is not None and model_id in catalog.models:
        model_file, model = catalog.models[model_id]
        if any(e["provider"] == offer.provider for e in model.get("endpoints") or []):
            return  # the model is there under another name at this provider: nothing to guess
        catalog.add_endpoint(model, _endpoint(offer, model, host=True))
        _fill(catalog, model, offer)
        report.endpoints_added.append(f"{model_id}@{offer.provider}")
        touched.add(model_file.name)
        return
    if offer.context_length is None:
        return  # a model needs its context length; the table does not give it
    model = _model(catalog, offer)
    catalog.add_model(model)
    report.models_added.append(offer.model_id)
    touched.add(catalog.models[offer.model_id][0].name)


def _model(catalog: _Catalog, offer: Offer) -> dict[str, Any]:
    model: dict[str, Any] = {"id": offer.model_id}
    _fill(catalog, model, offer)
    if offer.extra_parameters:
        model["extra_parameters"] = list(offer.extra_parameters)
    if offer.unsupported_parameters:
        model["unsupported_parameters"] = list(offer.unsupported_parameters)
    model["endpoints"] = [_endpoint(offer, model, host=False)]
    return model


def _fill(catalog: _Catalog, model: dict[str, Any], offer: Offer) -> None:
    """What the model does not say yet, from the offer: a model written by hand with only its id and an
    endpoint gets its name, description, modalities and tokenizer here."""
    author, slug = model["id"].split("/", 1)
    provider = catalog.data.providers.get(offer.provider) or {}
    model.setdefault("name", offer.name or display_name(author, slug))
    model.setdefault(
        "description", offer.description or describe(offer, str(provider.get("name") or offer.provider))
    )
    if offer.created and not model.get("created"):
        model["created"] = offer.created
    model.setdefault("input_modalities", offer.input_modalities or ["text"])
    model.setdefault("output_modalities", ["embeddings"] if offer.embedding else ["text"])
    if offer.dimensions is not None and model["output_modalities"] == ["embeddings"]:
        model.setdefault("dimensions", offer.dimensions)
    model.setdefault("tokenizer", AUTHOR_TOKENIZERS.get(author, "unknown"))


def _endpoint(offer: Offer, model: dict[str, Any], *, host: bool) -> dict[str, Any]:
    endpoint: dict[str, Any] = {"provider": offer.provider}
    if offer.upstream != model["id"].split("/", 1)[1]:
        endpoint["upstream_model"] = offer.upstream
    if offer.snapshots:
        endpoint["snapshots"] = list(offer.snapshots)
    # A host that does not state a limit gets the most cautious one the model's other endpoints have.
    context = offer.context_length or _known_limit(model, "context_length")
    max_output = None if offer.embedding else offer.max_output or _known_limit(model, "max_output")
    if context is not None:
        endpoint["context_length"] = context
    if max_output is not None:
        endpoint["max_output"] = min(max_output, context) if context else max_output
    if offer.supported_parameters is not None:
        endpoint["supported_parameters"] = list(offer.supported_parameters)
    if host:
        # What the host's entry says beyond what the model already says for all its endpoints.
        extra = [p for p in offer.extra_parameters if p not in (model.get("extra_parameters") or ())]
        unsupported = [
            p for p in offer.unsupported_parameters if p not in (model.get("unsupported_parameters") or ())
        ]
        if extra:
            endpoint["extra_parameters"] = extra
        if unsupported:
            endpoint["unsupported_parameters"] = unsupported
    endpoint["price"] = dict(offer.price)
    return endpoint


def _known_limit(model: dict[str, Any], name: str) -> int | None:
    values = [e.get(name, model.get(name)) for e in model.get("endpoints") or []]
    known = [v for v in values if v is not None] or ([model[name]] if model.get(name) else [])
    return min(known) if known else None


def _host_match(catalog: _Catalog, offer: Offer) -> tuple[str, int] | None:
    """The catalog model a host's name stands for, and how loosely it was found (lower is closer)."""
    for rank, name in enumerate(host_names(offer.upstream)):
        model_id = catalog.unique(name)
        if model_id is not None:
            return model_id, rank
    return None


def host_names(upstream: str) -> Iterator[str]:
    """The names a host's model may go by in the catalog, closest first: "Qwen/Qwen3-235B-A22B-Instruct-
    2507" as written, without its organisation, then loosened (Fireworks' "v3p1" is "v3.1", "Meta-Llama"
    is "Llama", speed and precision variants and "-instruct" dropped)."""
    name = upstream.lower()
    bare = name.removeprefix(_FIREWORKS_MODELS).rsplit("/", 1)[-1]
    seen: set[str] = set()
    steps = [name, bare]
    loose = re.sub(r"(\d)p(\d)", r"\1.\2", bare).removeprefix("meta-")
    steps.append(loose)
    loose = _VARIANT.sub("", loose)
    steps.append(loose)
    steps.append(loose.replace("-instruct", ""))
    for step in steps:
        if step not in seen:
            seen.add(step)
            yield step


def _hoist_limits(model: dict[str, Any]) -> None:
    """Write a limit on the model when every endpoint has it, and on an endpoint only where it differs.

    A host that gives its whole context as the output limit has not stated an output limit: where the
    maker's own API has one, the host's is taken to be no larger."""
    endpoints = model.get("endpoints") or []
    author = model["id"].split("/", 1)[0]
    maker = next((e for e in endpoints if FIRST_PARTY.get(e["provider"]) == author), None)
    for name in ("context_length", "max_output"):
        values = [e.get(name, model.get(name)) for e in endpoints]
        if not values or None in values:
            continue
        if name == "max_output" and maker is not None:
            cap = maker.get(name, model.get(name))
            contexts = [e.get("context_length", model.get("context_length")) for e in endpoints]
            values = [min(v, cap) if v == c else v for v, c in zip(values, contexts, strict=True)]
        top = max(values)
        model[name] = top
        for endpoint, value in zip(endpoints, values, strict=True):
            if value == top:
                endpoint.pop(name, None)
            else:
                endpoint[name] = value
