"""A small Redis client: the RESP protocol over one pipelined connection (``resp``) and bounded calls
with a breaker (``link``). What replicas share through it lives with its concept: the ledger of key limits
in ``tokenmux.limits.redis_ledger``, endpoint cooldowns and circuits in ``tokenmux.routing.shared_health``.
Without ``--redis`` none of it runs and each process keeps its own."""
