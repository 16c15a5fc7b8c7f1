"""One short CLI verb (`validate`, `plan`, `audit`, `diff`), each pure result computed once.

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


def by_value(name: str, context: tuple[Any, ...], value: tuple[Any, ...], compute: Callable[[], T]) -> T:
    """`compute()`, or within `scope()` its earlier result for the very same `context` objects (the
    stack settings) and an equal `value` (frozen, hashable models: an agent). Two fleets of a
    diff share most agents: each equal agent is planned once. Unhashable values are not kept."""
    memo = table(name)
    if memo is None:
        return compute()
    ids = (*map(id, context), *map(id, value))
    hit = memo.get(ids)  # the same objects again (hashing a model walks all of its fields)
    if hit is not None and _same(hit[0], context) and _same(hit[1], value):
        return hit[2]  # type: ignore[no-any-return]
    try:
        key = ("=", *map(id, context), *map(_hashed, value))
        equal = memo.get(key)
    except TypeError:  # an unhashable field: compute, keep nothing
        return compute()
    if equal is not None and _same(equal[0], context):
        result = equal[2]
    else:
        result = compute()
        memo[key] = (context, value, result)
    memo[ids] = (context, value, result)
    return result  # type: ignore[no-any-return]


class _Hashed:
    """A value as a dict key, its hash computed once: a frozen model hashes all of its fields on
    every `hash()`, and each of the builders above keys on the same agent."""

    __slots__ = ("value", "hash")

    def __init__(self, value: Any) -> None:
        self.value = value
        self.hash = hash(value)

    def __hash__(self) -> int:
        return self.hash

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Hashed) and (self.value is other.value or (self.hash == other.hash and self.value == other.value))


def _hashed(value: Any) -> Any:
    """`value` as a key: strings and numbers as they are (their hash is cheap or cached), any
    other value wrapped once per scope (kept with its wrapper, so its id is not reused). Equal
    values share the first one's wrapper: the two fleets of a diff compare each agent once,
    not once per builder."""
    if isinstance(value, (str, int)):
        return value
    keys = table("hashed values")
    assert keys is not None
    found = keys.get(id(value))
    if found is not None and found[0] is value:
        return found[1]
    wrapper = _Hashed(value)
    first = table("equal values")
    assert first is not None
    wrapper = first.setdefault(wrapper, wrapper)
    keys[id(value)] = (value, wrapper)
    return wrapper


def by_identity(name: str, inputs: tuple[Any, ...], compute: Callable[[], T], values: tuple[Any, ...] = ()) -> T:
    """`compute()`, or within `scope()` its earlier result for the very same input objects and
    equal `values` (hashable plain arguments). The inputs are kept with the result, so their ids
    cannot be taken by other objects meanwhile."""
    memo = table(name)
    if memo is None:
        return compute()
    key = (*map(id, inputs), *values)
    hit = memo.get(key)
    if hit is not None and _same(hit[0], inputs):
        return hit[1]  # type: ignore[no-any-return]
    result = compute()
    memo[key] = (inputs, result)
    return result


def _same(kept: tuple[Any, ...], given: tuple[Any, ...]) -> bool:
    for a, b in zip(kept, given):
        if a is not b:
            return False
    return True
