"""Names of predictors: ``create(name, **params)`` and ``available()``."""
from __future__ import annotations

from typing import Callable, TypeVar

_REGISTRY: dict[str, type] = {}

T = TypeVar("T", bound=type)


def register(name: str) -> Callable[[T], T]:
    """Class decorator: make a predictor class available as ``create(name)``."""
    def decorate(cls: T) -> T:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"predictor name {name!r} is already registered by {_REGISTRY[name].__name__}")
        _REGISTRY[name] = cls
        cls.name = name
        return cls
    return decorate


def available() -> list[str]:
    """Names accepted by :func:`create`, sorted."""
    return sorted(_REGISTRY)


def check_name(name: str) -> str:
    """``name`` if a predictor is registered under it, else a ``ValueError``
    listing the known names."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown predictor {name!r}; known predictors: {', '.join(available())}")
    return name


def create(name: str, **params):
    """A new predictor of the given name with the given constructor parameters.

    Raises ``ValueError`` listing the known names when ``name`` is unknown, and
    ``TypeError`` naming the accepted parameters when a parameter is unknown.
    """
    cls = _REGISTRY[check_name(name)]
    try:
        return cls(**params)
    except TypeError as exc:
        import inspect
        accepted = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
        raise TypeError(f"predictor {name!r}: {exc}; accepted parameters: {', '.join(accepted)}") from None
