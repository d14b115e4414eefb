"""State that replicas share through Redis: the ledger of key limits (``accounts``) and endpoint health
(``health``), over one connection with bounded waits (``link``). Without ``--redis`` none of it runs and
each process keeps its own (``tokenmux.limits.accounts.LocalAccounts``, ``tokenmux.routing.health``)."""
