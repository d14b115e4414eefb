"""What each API key may do and spend: its limits (``key_limits``), the ledger that enforces them
(``accounts``, in process; ``redis_accounts``, shared by replicas), and money arithmetic (``money``)."""
