"""Parameters of Parsl's ``WorkQueueExecutor`` whose meaning lfm gives in its
own way, or refuses at construction with the reason (never silently):
``source`` and ``autolabel_window``."""
from __future__ import annotations

from typing import Any

#: Parsl's default ``autolabel_window``: the predictor's own cold start.
DEFAULT_WINDOW = 1


def check_source(source: Any, pack: Any) -> None:
    """``source=True`` asks Parsl to ship a python app as its source text
    instead of pickled bytecode. lfm ships every app (python and bash alike)
    with cloudpickle, by reference to its module when the workers can import
    it: there is no source mode to switch to, so True is refused (except with
    ``pack=True``, which implies it in Parsl)."""
    if not isinstance(source, bool):
        raise TypeError(f"source must be a bool, got {source!r}")
    if source and not pack:
        raise ValueError(
            "source=True cannot be honoured: lfm ships every app (python and bash) with "
            "cloudpickle, by reference to its module when the workers can import it, and "
            "has no source-text mode; remove source=True (apps run the same without it)")


def window_predictor(predictor: Any, autolabel: bool, window: Any,
                     resources: tuple[str, ...]) -> Any:
    """The predictor to give lfm's executor, with ``autolabel_window`` applied.

    Parsl's ``autolabel_window=N`` makes Work Queue wait for N tasks of a
    category before trusting a label. lfm's bucketing predictors have that
    knob: ``num_sampling_points``, the successful tasks of a category before
    it leaves its cold start. So with ``autolabel=True`` and N other than 1
    (Parsl's default, which leaves the predictor's own cold start), a
    predictor *name* is created here with ``num_sampling_points=N``; a
    predictor without such a window (``auto``, ``max-seen``, ...) or an
    object is refused with the reason. ``autolabel=False``: no label is
    learnt, the window has no effect (as in Parsl)."""
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise ValueError(f"autolabel_window must be an integer >= 1 (tasks of a category), "
                         f"got {window!r}")
    if not autolabel or window == DEFAULT_WINDOW:
        return predictor
    import predictors
    windowed = []
    for name in predictors.available():
        try:
            predictors.create(name, resources=resources, num_sampling_points=window)
            windowed.append(name)
        except (TypeError, ValueError):
            continue
    if isinstance(predictor, str) and predictor in windowed:
        return predictors.create(predictor, resources=resources, num_sampling_points=window)
    what = f"the predictor {predictor!r}" if isinstance(predictor, str) else "a predictor object"
    raise ValueError(
        f"autolabel_window={window} cannot be honoured with {what}: it has no window of tasks "
        "to wait for (it labels a category from its first task on). Predictors with one "
        f"(num_sampling_points, the successful tasks of a category before labels are "
        f"trusted): {', '.join(windowed)}; pass predictor= one of them, or leave "
        "autolabel_window at 1")
