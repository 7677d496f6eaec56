"""Bucketing algorithms: turn the history of one resource of one category into
buckets (upper bound, probability).

Pure functions over (value, significance) points - ``greedy``, ``exhaustive``
(each with a ``deterministic`` cost model), ``kmeans`` and ``quantile`` - and
``BucketingState``, the incremental history a predictor keeps per category and
resource.  Values are in the resource's unit (memory and disk in MB, cores,
seconds); significance defaults to the arrival index so later tasks weigh more.
"""
from .cost import ladder_cost, ladder_costs, split_costs
from .exhaustive import exhaustive
from .greedy import greedy
from .kmeans import kmeans
from .points import Bucket, Points
from .quantile import quantile
from .state import BucketingState, recompute_due

__all__ = ["Bucket", "BucketingState", "Points", "exhaustive", "greedy", "kmeans", "ladder_cost", "ladder_costs",
           "quantile", "recompute_due", "split_costs"]
