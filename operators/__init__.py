"""Pure window, aggregate, alarm, flow and health logic that renders itself to Flink SQL (into the contracts of
pipeline/stages.py).

Nothing here touches a server or Flink: every piece is a small value object that
knows its SQL, so tests check it without a cluster and the per-event work runs
in the JVM.
"""

from operators.aggregates import Count, CountIf, Max, Mean, Min, Share, Sum
from operators.conditions import Condition
from operators.windows import Tumbling, tumbling

__all__ = ["Condition", "Count", "CountIf", "Max", "Mean", "Min", "Share", "Sum", "Tumbling", "tumbling"]
