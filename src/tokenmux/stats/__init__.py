"""Live per-endpoint figures from the request log, through pre-aggregated buckets.

``buckets``: the aggregate rows and how a batch becomes their deltas (the store writes them with the log);
``distribution``: count, sum, min, max and a log-scale histogram that merge by addition;
``windows``: the figures of one moment from bucket rows; ``live``: ``Stats``, the refreshed snapshot.

Nothing here imports ``tokenmux.store`` at run time (the store imports ``buckets``), so either package may
be imported first.
"""

from tokenmux.stats.live import Stats
from tokenmux.stats.windows import HOURLY_BARS, Figures

__all__ = ["HOURLY_BARS", "Figures", "Stats"]
