"""One CLI verb, each pure result computed once.

A verb reaches the same builders several times: `validate --stack` reads the fleet twice (every
environment, then the stack's), the name check runs in the loader and again in `build_plan`, the
quota model and the plan both plan every agent. Inside `scope()` those results are kept and
handed out again, keyed by the identity of their (frozen) inputs; outside it (a Pulumi program,
the tests) nothing is kept, so a long-lived process holds no hidden state. Every check still
runs on the first call; the reuse only skips recomputing the same answer.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator, TypeVar

T = TypeVar("T")

_ACTIVE: dict[str, dict[Any, Any]] | None = None


@contextmanager
def scope() -> Iterator[None]:
    """Keep pure results for the duration of the block (one verb)."""
    global _ACTIVE
    previous, _ACTIVE = _ACTIVE, {}
    try:
        yield
    finally:
        _ACTIVE = previous


def active() -> bool:
    return _ACTIVE is not None


def table(name: str) -> dict[Any, Any] | None:
    """The block's table for one kind of result, None outside `scope()`."""
    return None if _ACTIVE is None else _ACTIVE.setdefault(name, {})


def by_identity(name: str, inputs: tuple[Any, ...], compute: Callable[[], T], values: tuple[Any, ...] = ()) -> T:
    """`compute()`, or within `scope()` its earlier result for the very same input objects and
    equal `values` (hashable plain arguments). The inputs are kept with the result, so their ids
    cannot be taken by other objects meanwhile."""
    memo = table(name)
    if memo is None:
        return compute()
    key = (*(id(x) for x in inputs), *values)
    hit = memo.get(key)
    if hit is not None and all(a is b for a, b in zip(hit[0], inputs)):
        return hit[1]  # type: ignore[no-any-return]
    result = compute()
    memo[key] = (inputs, result)
    return result
