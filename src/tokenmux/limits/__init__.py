"""What each API key may do and spend: its limits (``key_limits``), the ledger that enforces them
(``ledger``, in process; ``redis_ledger`` with its Lua scripts in ``redis_ledger_scripts``, shared by
replicas), and money arithmetic (``money``)."""
