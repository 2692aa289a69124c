"""Frozen dataclasses that cost less to define.

Python 3.11's ``dataclass`` compiles each generated method with ``exec``: six for a frozen
class (``__init__``, ``__repr__``, ``__eq__``, ``__hash__``, ``__setattr__``,
``__delattr__``), about 1 ms a class, and the catalog schema, the hardware records and the
estimator's results are ~45 classes that every scan and check defines (issue 15); every
frozen dataclass of the package is made this way.
``Record`` gives them ``__eq__``, ``__hash__`` and ``__repr__`` once, for every class, with
the dataclass semantics (same class, the fields that take part in comparison, in order),
so ``record`` compiles only the other three, and takes their code from ``codecache``'s
table (compiled with the shipped catalog) when it has it. Python 3.13 compiles a class's
methods in one ``exec``; this module can then shrink to the table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields
from operator import attrgetter
from typing import TYPE_CHECKING, Any, TypeVar

from canirun.codecache import compiling, run_code

if TYPE_CHECKING:
    from typing_extensions import dataclass_transform
else:  # the 3.11 typing module takes frozen_default only as an unknown keyword
    from typing import dataclass_transform

C = TypeVar("C")


class Record:
    """The base of canirun's frozen records: value equality, hashing and a repr."""

    __slots__ = ()
    # The compared fields' values as a tuple: an operator.attrgetter (C speed; the
    # estimator's memos hash a Workload thousands of times a scan).
    _values: Callable[[Any], tuple[Any, ...]] = staticmethod(lambda _: ())
    _shown: tuple[str, ...] = ()
    # The fields __init__ takes, and a getter of their values (for ``evolve``).
    _init_names: tuple[str, ...] = ()
    _init_values: Callable[[Any], tuple[Any, ...]] = staticmethod(lambda _: ())

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values(self) == self._values(other)

    def __hash__(self) -> int:
        return hash(self._values(self))

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._shown)
        return f"{type(self).__qualname__}({shown})"


R = TypeVar("R", bound=Record)


def evolve(obj: R, **changes: Any) -> R:
    """``dataclasses.replace`` for a record, without its per-call look at the fields (a
    scan replaces a few thousand records). A field left out of ``__init__`` is made again
    by it, as with ``dataclasses.replace``."""
    values = dict(zip(obj._init_names, obj._init_values(obj), strict=True))
    values.update(changes)
    return type(obj)(**values)


def _getter(names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    if len(names) >= 2:
        return attrgetter(*names)  # a tuple of the values, in order
    if names:
        one = attrgetter(names[0])
        return lambda record: (one(record),)
    return lambda _: ()


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def record(*, slots: bool = False, kw_only: bool = False) -> Callable[[type[C]], type[C]]:
    """``@dataclass(frozen=True, slots=..., kw_only=...)`` for a ``Record`` subclass, with
    ``Record``'s equality, hash and repr instead of compiled ones."""

    def wrap(cls: type[C]) -> type[C]:
        if not issubclass(cls, Record):
            raise TypeError(f"{cls.__name__}: a record must derive from Record")
        if cls.__doc__ is None:
            # dataclass would write the class's signature as its doc with inspect.signature
            # (~60 us a class, and the import of inspect; issue 15). The field names say as
            # much, and a doc that starts with "Name(" is left out of JSON Schemas by
            # pydantic, as the generated one is.
            names = cls.__dict__.get("__annotations__", ())  # noqa: RUF063 (not inspect's)
            cls.__doc__ = f"{cls.__name__}({', '.join(names)})"
        with compiling():  # the generated methods' code from the shipped table
            made = dataclass(frozen=True, eq=False, repr=False, slots=slots, kw_only=kw_only)(cls)
        every = fields(made)  # type: ignore[arg-type]
        made._values = staticmethod(_getter(tuple(f.name for f in every if f.compare)))
        made._shown = tuple(f.name for f in every if f.repr)
        init = tuple(f.name for f in every if f.init)
        made._init_names, made._init_values = init, staticmethod(_getter(init))
        if slots and not kw_only:
            _set_through_slots(made, every)
        return made

    return wrap


def _set_through_slots(cls: Any, every: tuple[Any, ...]) -> None:
    """Give a slotted record an ``__init__`` that sets each field through its slot's own
    descriptor: the dataclass one calls ``object.__setattr__`` by name for each field,
    about twice as slow, and a scan builds thousands of results (issue 15). Same
    signature, same defaults; a record with a default factory, a field left out of
    ``__init__`` or a ``__post_init__`` keeps the dataclass one."""
    if hasattr(cls, "__post_init__") or any(
        not f.init or f.default_factory is not MISSING for f in every
    ):
        return
    namespace: dict[str, Any] = {}
    params, body = [], []
    for i, f in enumerate(every):
        namespace[f"_set{i}"] = cls.__dict__[f.name].__set__
        if f.default is MISSING:
            params.append(f.name)
        else:
            namespace[f"_default{i}"] = f.default
            params.append(f"{f.name}=_default{i}")
        body.append(f"    _set{i}(self, {f.name})")
    text = f"def __init__(self, {', '.join(params)}):\n" + "\n".join(body or ["    pass"]) + "\n"
    with compiling():
        run_code(text, namespace)
    init = namespace["__init__"]
    init.__annotations__ = dict(cls.__init__.__annotations__)  # the dataclass one's
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    cls.__init__ = init
