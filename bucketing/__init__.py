"""Bucketing algorithms: turn the history of one resource of one category into
buckets (upper bound, probability).

Pure functions over (value, significance) points - ``greedy``, ``exhaustive``
(each with a ``deterministic`` cost model), ``kmeans``, ``quantile``,
``quantized`` (task counts, cctools' quantized mode) and ``optimal_ladder``
(cost-optimal retry ladders over wall-time-weighted points) - and
``BucketingState``, the incremental history a predictor keeps per category and
resource.  Values are in the resource's unit (memory and disk in MB, cores,
seconds); significance defaults to the arrival index so later tasks weigh more.
"""
from .cost import ladder_cost, ladder_costs, split_costs
from .exhaustive import exhaustive
from .greedy import greedy
from .kmeans import kmeans
from .optimal import optimal_ladder
from .points import Bucket, Points
from .quantile import quantile
from .quantized import quantized
from .state import BucketingState, recompute_due

__all__ = ["Bucket", "BucketingState", "Points", "exhaustive", "greedy", "kmeans", "ladder_cost", "ladder_costs",
           "optimal_ladder", "quantile", "quantized", "recompute_due", "split_costs"]
