"""Routing: from a request to the ordered list of endpoints to try (README "Routing", steps 1-4).

The default order is a score, lower first::

    score = blended_price * (1 + first_token_latency_s) / uptime**2

``blended_price`` weighs input and output prices 3:1, as a typical chat call does, the input at its
effective price: ``input * (1 - h) + cache_read * h`` with ``h`` the share of the endpoint's recent prompt
tokens its provider read from the prompt cache (0 when unmeasured); latency is the recent first-token
latency (1 s when unmeasured); uptime is the recent success rate (1.0 when unmeasured). So
between two equally priced endpoints the faster one leads, a pricier endpoint must be proportionally
faster to lead, and one that fails often sinks fast. Endpoints in cooldown or with an open circuit come
last, whatever the sort, and are never left out (``blocked_last``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from tokenmux.catalog.lookup import close_matches, find_models
from tokenmux.catalog.model import Catalog, Endpoint, Model
from tokenmux.errors import InvalidRequest, ModelNotFound, PayloadTooLarge, TokenmuxError
from tokenmux.routing.embedding_inputs import longest_input
from tokenmux.routing.fit import MIN_OUTPUT_RESERVE, FitResult, PromptSize, check_fit, fit_known
from tokenmux.routing.health import HealthBoard
from tokenmux.routing.open_fits import OpenFits
from tokenmux.types import ChatRequest, EmbeddingRequest, ProviderPreferences

SUFFIX_SORT = {":nitro": "throughput", ":floor": "price"}
# Sent to every provider whether or not the catalog lists it: harmless everywhere.
ALWAYS_PASSED = frozenset({"user"})
_MAX_TOKEN_NAMES = ("max_tokens", "max_completion_tokens")
_UNMEASURED_TTFT_MS = 1000.0
# Distinct kinds of request (model, preferences, parameter names) whose routes are kept; then all are
# forgotten and worked out again, which bounds memory whatever clients send.
_MAX_ROUTES = 4096


@dataclass(slots=True)
class Candidate:
    model: Model
    endpoint: Endpoint
    params: dict[str, Any]  # the request's params as this endpoint will receive them
    dropped: tuple[str, ...]  # params this endpoint does not support, left out
    # Set when only a count can say whether the prompt fits this endpoint (``Router.plan_open``).
    open_fit: OpenFits | None = None


@dataclass(slots=True)
class Exclusion:
    endpoint: Endpoint
    reason: str
    too_large: bool = False
    output_limit: int | None = None  # the endpoint's max output, when the requested output is above it


# (endpoint, its exclusion by the preferences or None, the params it drops, whether params need adapting)
_Entry = tuple[Endpoint, "Exclusion | None", tuple[str, ...], bool]


@dataclass(frozen=True, slots=True)
class _Group:
    model: Model
    sort: str | None  # the sort the model's name asked for (":nitro", ":floor")
    entries: tuple[_Entry, ...]


@dataclass(frozen=True, slots=True)
class _Route:
    groups: tuple[_Group, ...]
    resolved: tuple[tuple[Model, str | None], ...]
    unconfigured: tuple[Model, ...]


def _count_decides(
    route: _Route, size: PromptSize, max_output: int | None, reserve: int, require_parameters: bool
) -> bool:
    """Whether counting the prompt's tokens can change the plan (README "Routing", step 3).

    Only the endpoints whose fit the byte bound leaves open would be counted for. When they all have one
    context length and one tokenizer, and no endpoint the bound settles is in the plan beside them, they
    all fit or none does: the plan is the same either way, and a prompt that is too long is refused by the
    provider itself. Then nothing is counted, however long the prompt (a first-seen 1M-token prompt would
    otherwise hold a core for a tenth of a second)."""
    open_fits: set[tuple[str, int]] = set()
    settled = False
    for group in route.groups:
        family = group.model.tokenizer
        bound = -1
        for ep, excluded, dropped, _ in group.entries:
            if (
                excluded is not None
                or (dropped and require_parameters)
                or (max_output is not None and max_output > ep.max_output)
            ):
                continue  # out of the plan whatever the prompt's size
            if bound < 0:
                bound = size.upper_bound(family)
            if bound + reserve <= ep.context_length:
                settled = True
            else:
                open_fits.add((family, ep.context_length))
            if open_fits and (settled or len(open_fits) > 1):
                return True
    return False


def blended_price(endpoint: Endpoint) -> float:
    return (3 * endpoint.price.input + endpoint.price.output) / 4


def effective_input_price(endpoint: Endpoint, cache_hit_rate: float | None) -> float:
    """The input price per million prompt tokens when ``cache_hit_rate`` of them are read from the cache
    at the cache-read price."""
    price = endpoint.price
    if not cache_hit_rate or price.cache_read is None:
        return price.input
    return price.input * (1.0 - cache_hit_rate) + price.cache_read * cache_hit_rate


class Router:
    def __init__(
        self,
        catalog: Catalog,
        configured_providers: Collection[str],
        health: HealthBoard,
        *,
        measured: Callable[[str], tuple[float | None, float | None]] | None = None,
        cache_hit_rate: Callable[[str], float | None] | None = None,
    ) -> None:
        self.catalog = catalog
        self.configured = frozenset(configured_providers)
        self.health = health
        # measured(endpoint_key) -> (first-token latency ms, throughput tokens/s) from the stats windows;
        # the health board's recent averages are used when it is not given or has nothing.
        self._measured = measured
        # cache_hit_rate(endpoint_key) -> share (0..1) of its recent prompt tokens read from the cache.
        self._cache_hit_rate = cache_hit_rate
        self._routes: dict[tuple[Any, ...], _Route] = {}

    # -- step 1 --------------------------------------------------------------------------------

    def resolve(self, name: str) -> tuple[Model, str | None]:
        """The model a name refers to, and the sort its suffix asks for."""
        sort = None
        base = name
        for suffix, suffix_sort in SUFFIX_SORT.items():
            if name.endswith(suffix):
                base, sort = name[: -len(suffix)], suffix_sort
                break
        found = find_models(self.catalog, base)
        if len(found) == 1:
            return found[0], sort
        if found:
            raise InvalidRequest(
                f"model {name!r} is ambiguous: it may mean {', '.join(m.id for m in found)}. "
                "Send one of these ids, or give the name an alias in the configuration.",
                param="model",
                code="ambiguous_model",
            )
        matches = close_matches(self.catalog, base)
        hint = f" Did you mean {', '.join(matches)}?" if matches else ""
        raise ModelNotFound(
            f"model {name!r} is not in the catalog.{hint} GET /api/v1/models lists every model.",
            param="model",
        )

    # -- steps 2-4 -----------------------------------------------------------------------------

    def plan(self, request: ChatRequest) -> list[Candidate]:
        """Every endpoint to try, in order, across the requested model and its fallback models; a prompt
        whose fit only a count can decide is counted here, in the caller's thread."""
        return self._plan(request, opening=False)

    def plan_open(self, request: ChatRequest) -> list[Candidate]:
        """``plan`` for serving: never tokenizes. An endpoint whose fit neither the byte bound nor the
        chunk-count cache can settle stays in the plan, marked with an ``OpenFits`` the attempt loop asks
        (``routing/open_fits.py``); it counts, in slices on the event loop, when an attempt needs it.

        With ``allow_fallbacks: false`` the plan keeps one endpoint (or the named ones) of the first model
        with a fitting endpoint, which only the count can say: that plan is counted here, as ``plan``."""
        return self._plan(request, opening=request.provider.allow_fallbacks)

    def _plan(self, request: ChatRequest, *, opening: bool) -> list[Candidate]:
        prefs = request.provider
        route = self._route(request)
        size = PromptSize(request)
        params = request.params
        max_output = request.max_output_tokens
        plan: list[Candidate] = []
        exclusions: list[Exclusion] = []
        opened: list[Candidate] = []  # endpoints whose fit is left to the count (when opening)
        reserve = MIN_OUTPUT_RESERVE if max_output is None else max_output
        counts = _count_decides(route, size, max_output, reserve, prefs.require_parameters)
        for group in route.groups:
            model = group.model
            # The byte bound settles nearly every fit; check_fit says the same then, at several times the cost.
            bound = -1
            kept: list[Candidate] = []
            for ep, excluded, dropped, adapt in group.entries:
                if excluded is not None:
                    exclusions.append(excluded)
                    continue
                if bound < 0:
                    bound = size.upper_bound(model.tokenizer)
                over = max_output is not None and max_output > ep.max_output
                open_fit = False
                if over or (counts and bound + reserve > ep.context_length):
                    fit = check_fit(size, ep, max_output, model.tokenizer) if not opening or over else None
                    if fit is None:
                        fit = fit_known(size, ep, max_output, model.tokenizer)
                        open_fit = fit is None
                    if fit is not None and not fit.fits:
                        limit = ep.max_output if over else None
                        exclusions.append(Exclusion(ep, fit.reason, too_large=True, output_limit=limit))
                        continue
                if dropped and prefs.require_parameters:
                    exclusions.append(
                        Exclusion(ep, f"does not support {', '.join(dropped)} (require_parameters)")
                    )
                    continue
                sent = adapt_params(params, ep.supported_parameters)[0] if adapt else params
                cand = Candidate(model, ep, sent, dropped)
                kept.append(cand)
                if open_fit:
                    opened.append(cand)
            plan.extend(self._ordered(kept, prefs, group.sort))
            if not prefs.allow_fallbacks and plan:
                break
        if opened:

            def empty_error(failed: list[tuple[Endpoint, FitResult]]) -> TokenmuxError:
                too_large = [Exclusion(ep, fit.reason, too_large=True) for ep, fit in failed]
                try:
                    self._raise_empty(request, route.resolved, exclusions + too_large, route.unconfigured)
                except TokenmuxError as err:
                    return err
                raise AssertionError("unreachable")

            endpoints = [(c.endpoint, c.model.tokenizer) for c in opened]
            open_fits = OpenFits(size, max_output, endpoints, empty_error)
            for cand in opened:
                cand.open_fit = open_fits
        if plan:
            return plan
        self._raise_empty(request, route.resolved, exclusions, route.unconfigured)
        raise AssertionError("unreachable")

    def plan_embeddings(self, request: EmbeddingRequest) -> list[Candidate]:
        """Every endpoint to try for an embeddings request, in order, across its model and fallback
        models: the provider preferences and the order as for chat; an endpoint whose input limit is
        below the longest input is left out; asking for more dimensions than a model gives is a 400."""
        prefs = request.provider
        plan: list[Candidate] = []
        exclusions: list[Exclusion] = []
        unconfigured: list[Model] = []
        resolved = [self.resolve(n) for n in (request.model, *request.fallback_models)]
        for model, _ in resolved:
            if not model.embedding:
                raise InvalidRequest(
                    f"model {model.id!r} is a chat model: it answers POST /api/v1/chat/completions (or "
                    "/api/v1/responses), not an embeddings request; GET /api/v1/models lists the embedding "
                    "models (output_modalities: ['embeddings'])",
                    param="model",
                )
            most = model.dimensions
            if request.dimensions is not None and most is not None and request.dimensions > most:
                raise InvalidRequest(
                    f"dimensions is {request.dimensions:,}, more than {model.id} gives (at most {most:,})",
                    param="dimensions",
                )
        for model, suffix_sort, configured in self._with_endpoints(resolved, unconfigured):
            longest = longest_input(request, model.tokenizer, min(e.context_length for e in configured))
            kept: list[Candidate] = []
            for ep in configured:
                reason = preference_exclusion(prefs, ep)
                if reason is None and longest > ep.context_length:
                    reason = f"an input of {longest:,} tokens is over its limit of {ep.context_length:,}"
                    exclusions.append(Exclusion(ep, reason, too_large=True))
                elif reason is not None:
                    exclusions.append(Exclusion(ep, reason))
                else:
                    kept.append(Candidate(model, ep, {}, ()))
            plan.extend(self._ordered(kept, prefs, suffix_sort))
            if not prefs.allow_fallbacks and plan:
                break
        if plan:
            return plan
        too_large = (
            f"an input is too long for every endpoint of {request.model}: {{reasons}}. Split or shorten it."
        )
        self._raise_excluded(exclusions, resolved[0][0], too_large, "input")
        raise AssertionError("unreachable")

    def _route(self, request: ChatRequest) -> _Route:
        """The part of the plan that the request's prompt does not change, worked out once per kind of
        request: which models, which of their endpoints pass the preferences, what each must drop."""
        prefs = request.provider
        key = (
            request.model,
            request.fallback_models,
            prefs.order,
            prefs.only,
            prefs.ignore,
            prefs.allow_fallbacks,
            prefs.data_collection,
            prefs.zdr,
            prefs.max_price_prompt,
            prefs.max_price_completion,
            tuple(request.params),
        )
        route = self._routes.get(key)
        if route is None:
            route = self._new_route(request)
            if len(self._routes) >= _MAX_ROUTES:
                self._routes.clear()
            self._routes[key] = route
        return route

    def _new_route(self, request: ChatRequest) -> _Route:
        names = (request.model, *request.fallback_models)
        resolved = [self.resolve(n) for n in names]  # raises ModelNotFound: nothing is cached then
        for model, _ in resolved:
            if model.embedding:
                raise InvalidRequest(
                    f"model {model.id!r} is an embedding model: it answers POST /api/v1/embeddings, "
                    "not a chat request",
                    param="model",
                )
        groups: list[_Group] = []
        unconfigured: list[Model] = []
        for model, suffix_sort, configured in self._with_endpoints(resolved, unconfigured):
            entries = tuple(self._entry(request, ep) for ep in configured)
            groups.append(_Group(model, suffix_sort, entries))
        return _Route(tuple(groups), tuple(resolved), tuple(unconfigured))

    def _with_endpoints(
        self, resolved: Sequence[tuple[Model, str | None]], unconfigured: list[Model]
    ) -> Iterator[tuple[Model, str | None, list[Endpoint]]]:
        """Each model once, with its sort and its configured endpoints; one with none goes to
        ``unconfigured`` instead."""
        seen: set[str] = set()
        for model, suffix_sort in resolved:
            if model.id in seen:
                continue
            seen.add(model.id)
            configured = [e for e in model.endpoints if e.provider in self.configured]
            if configured:
                yield model, suffix_sort, configured
            else:
                unconfigured.append(model)

    def _entry(self, request: ChatRequest, ep: Endpoint) -> _Entry:
        """How one endpoint stands with the request's preferences and the names of its params; the fit of
        the prompt and ``require_parameters`` are checked per request, in that order, after these."""
        reason = preference_exclusion(request.provider, ep)
        if reason is not None:
            return ep, Exclusion(ep, reason), (), False
        # Which params an endpoint drops depends on their names only; their values are adapted per request.
        _, dropped = adapt_params(dict.fromkeys(request.params), ep.supported_parameters)
        adapt = any(k not in ep.supported_parameters and k not in ALWAYS_PASSED for k in request.params)
        return ep, None, dropped, adapt

    def _ordered(
        self, kept: list[Candidate], prefs: ProviderPreferences, suffix_sort: str | None
    ) -> list[Candidate]:
        """One model's candidates in the order to try them."""
        ordered = self._order(kept, prefs.order, prefs.sort or suffix_sort)
        if not prefs.allow_fallbacks:
            # Without fallbacks only the providers the client named in `order` (or else the best one).
            named = [c for c in ordered if c.endpoint.provider in prefs.order]
            ordered = named or ordered[:1]
        return ordered

    def _order(
        self, candidates: list[Candidate], order: tuple[str, ...], sort: str | None
    ) -> list[Candidate]:
        if len(candidates) <= 1:
            return candidates
        key = self._sort_key(sort)
        rank = {slug: i for i, slug in enumerate(order)}
        blocked = self.health.blocked_until

        def full_key(c: Candidate) -> tuple[bool, int, float, float]:
            return (
                blocked(c.endpoint.key) > 0,
                rank.get(c.endpoint.provider, len(rank)),
                key(c.endpoint),
                c.endpoint.price.input,
            )

        return sorted(candidates, key=full_key)

    def figures(self, key: str) -> tuple[float | None, float | None, float]:
        """(first-token latency ms, throughput tokens/s, uptime 0..1) as routing sees them now."""
        ttft = tps = None
        if self._measured is not None:
            ttft, tps = self._measured(key)
        state = self.health.peek(key)
        if state is not None:
            ttft = ttft if ttft is not None else state.ttft_ms
            tps = tps if tps is not None else state.throughput_tps
        return ttft, tps, state.success if state is not None else 1.0

    def _sort_key(self, sort: str | None) -> Callable[[Endpoint], float]:
        if sort == "price":
            return blended_price
        if sort == "throughput":

            def by_throughput(ep: Endpoint) -> float:
                tps = self.figures(ep.key)[1]
                return -tps if tps is not None else 0.0  # unmeasured after measured ones

            return by_throughput
        if sort == "latency":

            def by_latency(ep: Endpoint) -> float:
                ttft = self.figures(ep.key)[0]
                return ttft if ttft is not None else float("inf")

            return by_latency

        hit_rate = self._cache_hit_rate

        def score(ep: Endpoint) -> float:
            ttft, _, uptime = self.figures(ep.key)
            latency_s = (ttft if ttft is not None else _UNMEASURED_TTFT_MS) / 1000.0
            price = ep.price
            if hit_rate is not None and price.cache_read is not None:
                blended = (3 * effective_input_price(ep, hit_rate(ep.key)) + price.output) / 4
            else:
                blended = blended_price(ep)
            return blended * (1.0 + latency_s) / max(uptime, 0.05) ** 2

        return score

    def _raise_empty(
        self,
        request: ChatRequest,
        resolved: Sequence[tuple[Model, str | None]],
        exclusions: list[Exclusion],
        unconfigured: Sequence[Model],
    ) -> None:
        param = request.max_output_param
        limits = [x.output_limit for x in exclusions if x.output_limit is not None]
        if exclusions and len(limits) == len(exclusions):
            # Asking for more output than any endpoint can write is the request's mistake, not its size.
            most = max(limits)
            raise InvalidRequest(
                f"{param} is {request.max_output_tokens:,}, more than any endpoint of {request.model} can "
                f"write (at most {most:,}); set {param} to {most:,} or less.",
                param=param,
                code="max_output_exceeded",
            )
        too_large = (
            f"the prompt does not fit any endpoint of {request.model}: {{reasons}}. Shorten the prompt, lower "
            f"{param}, or add a model with a larger context to 'models'."
        )
        self._raise_excluded(exclusions, resolved[0][0], too_large, "messages")

    def _raise_excluded(self, exclusions: list[Exclusion], model: Model, too_large: str, param: str) -> None:
        """The error for a plan left empty: every endpoint too small for the request (``too_large``, a
        message with ``{reasons}``, about ``param``), some left out by the preferences, or ``model``'s
        providers not configured."""
        if exclusions and all(x.too_large for x in exclusions):
            reasons = "; ".join(f"{x.endpoint.provider}: {x.reason}" for x in exclusions)
            raise PayloadTooLarge(
                too_large.replace("{reasons}", reasons), param=param, code="context_length_exceeded"
            )
        if exclusions:
            reasons = "; ".join(
                f"{x.endpoint.model_id} at {x.endpoint.provider}: {x.reason}" for x in exclusions
            )
            raise InvalidRequest(
                f"no endpoint can take this request: {reasons}. Relax the provider preferences.",
                param="provider",
                code="no_endpoint_matches",
            )
        providers = ", ".join(sorted({e.provider for e in model.endpoints}))
        raise ModelNotFound(
            f"model {model.id} is in the catalog but none of its providers ({providers}) is configured on this "
            "gateway; add one under 'providers:' in the configuration file or set its API key variable.",
            param="model",
            code="no_configured_provider",
        )


def preference_exclusion(prefs: ProviderPreferences, ep: Endpoint) -> str | None:
    """Why the request's provider preferences leave an endpoint out, or None when they do not."""
    if prefs.only is not None and ep.provider not in prefs.only:
        return "not in provider.only"
    if ep.provider in prefs.ignore:
        return "in provider.ignore"
    if prefs.data_collection == "deny" and ep.data_policy.prompt_training:
        return "trains on prompts (data_collection: deny)"
    if prefs.zdr and not ep.data_policy.zero_retention:
        return "does not have zero data retention (zdr: true)"
    if prefs.max_price_prompt is not None and ep.price.input > prefs.max_price_prompt:
        return f"input price ${ep.price.input:g}/M above max_price.prompt"
    if prefs.max_price_completion is not None and ep.price.output > prefs.max_price_completion:
        return f"output price ${ep.price.output:g}/M above max_price.completion"
    return None


def blocked_last(plan: list[Candidate], blocked_until: Callable[[str], float]) -> list[Candidate]:
    """The plan in the order to try it now: the endpoints free to take traffic in the plan's order, then
    those in cooldown or with an open circuit, the one whose block ends soonest first.

    Health never takes an endpoint out of a plan: a cooldown or an open circuit is a guess about the
    provider, and when every endpoint is blocked one of them may well answer (as Envoy's panic threshold
    does), and a success closes its circuit at once.
    """
    blocked: list[tuple[float, int, Candidate]] | None = None
    for i, cand in enumerate(plan):
        until = blocked_until(cand.endpoint.key)
        if until:
            if blocked is None:
                blocked = []
            blocked.append((until, i, cand))
    if blocked is None:
        return plan
    taken = {i for _, i, _ in blocked}
    free = [c for i, c in enumerate(plan) if i not in taken]
    return free + [c for _, _, c in sorted(blocked, key=lambda b: (b[0], b[1]))]


def adapt_params(params: dict[str, Any], supported: frozenset[str]) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The params an endpoint can take, and the names of those it cannot.

    ``max_tokens`` and ``max_completion_tokens`` are one parameter under two names: whichever the client
    used is renamed to the one the endpoint knows.
    """
    unsupported = [k for k in params if k not in supported and k not in ALWAYS_PASSED]
    if not unsupported:
        return params, ()
    sent = dict(params)
    dropped: list[str] = []
    for name in unsupported:
        value = sent.pop(name)
        if name in _MAX_TOKEN_NAMES:
            other = _MAX_TOKEN_NAMES[1] if name == _MAX_TOKEN_NAMES[0] else _MAX_TOKEN_NAMES[0]
            if other in supported and other not in sent:
                sent[other] = value
                continue
        dropped.append(name)
    return sent, tuple(dropped)
