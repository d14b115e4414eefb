"""Live per-endpoint figures from the request log, through pre-aggregated buckets.

``windows``: the figures of one moment from bucket rows; ``live``: ``Stats``, the refreshed snapshot.
The rows themselves and their histograms are the store's (``tokenmux.store.buckets``,
``tokenmux.store.distribution``), written in the same transaction as the log; stats only reads them.
"""

from tokenmux.stats.live import Stats
from tokenmux.stats.windows import HOURLY_BARS, Figures

__all__ = ["HOURLY_BARS", "Figures", "Stats"]
