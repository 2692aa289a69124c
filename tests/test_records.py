"""canirun.records: frozen records with shared equality, hash and repr must behave as the
dataclasses they replace (the catalog, hardware and results records all use them)."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from canirun.estimate.results import Workload
from canirun.hardware.model import Cpu
from canirun.records import Record, record


@record(slots=True)
class Point(Record):
    x: int
    y: int = 0
    label: str = dataclasses.field(default="", compare=False, repr=False)


@dataclasses.dataclass(frozen=True, slots=True)
class Twin:
    x: int
    y: int = 0
    label: str = dataclasses.field(default="", compare=False, repr=False)


def test_equality_hash_and_repr_are_the_dataclass_ones() -> None:
    a, b, c = Point(1, 2, label="a"), Point(1, 2, label="b"), Point(2, 2)
    assert a == b  # label takes no part, as in the twin
    assert hash(a) == hash(b)
    assert a != c
    assert Twin(1, 2, "a") == Twin(1, 2, "b")
    assert repr(a) == repr(Twin(1, 2, "a")).replace("Twin", "Point")
    assert repr(a) == "Point(x=1, y=2)"
    assert a != Twin(1, 2)  # another class is never equal, even with the same values
    assert len({a, b, c}) == 2


def test_records_stay_frozen_slotted_and_picklable() -> None:
    p = Point(1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.x = 2  # type: ignore[misc]
    assert not hasattr(p, "__dict__")
    assert pickle.loads(pickle.dumps(p)) == p
    assert dataclasses.replace(p, y=5) == Point(1, 5)


def test_the_real_records_compare_by_value() -> None:
    assert Workload(context_tokens=4096) == Workload(context_tokens=4096)
    assert Workload(context_tokens=4096) != Workload(context_tokens=8192)
    assert hash(Cpu()) == hash(Cpu())
    assert repr(Workload()).startswith("Workload(context_tokens=")


def test_a_record_must_derive_from_record() -> None:
    with pytest.raises(TypeError, match="derive from Record"):

        @record()
        class Loose:  # type: ignore[type-var]
            x: int


def test_the_package_defines_its_frozen_records_through_record() -> None:
    """A frozen ``@dataclass`` costs twice the compiled methods of a ``@record`` at every
    start (issue 15); the package keeps to records."""
    from pathlib import Path

    import canirun

    package = Path(canirun.__file__).parent
    plain = [
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if path.name != "records.py" and "@dataclass(frozen=True" in path.read_text("utf-8")
    ]
    assert plain == []


def test_a_record_without_a_docstring_is_documented_by_its_fields() -> None:
    """Not by inspect.signature (the import of inspect and ~60 us a class, issue 15); a
    doc that starts with the class name is one pydantic leaves out of a JSON Schema."""
    assert Point.__doc__ == "Point(x, y, label)"
    from pydantic import TypeAdapter

    assert "description" not in TypeAdapter(Point).json_schema()
    assert (Cpu.__doc__ or "").startswith("Cpu(model, vendor, arch, ")
    assert not (Workload.__doc__ or "Workload(").startswith("Workload(")  # its own stays


def test_speed_with_prefill_is_the_speed_evolved() -> None:
    """speed._with_prefill builds the Speed positionally: every field must land where
    evolve would put it (a field added to Speed must be added there too)."""
    from canirun.estimate.results import Speed
    from canirun.estimate.speed import _with_prefill
    from canirun.records import evolve

    names = [f.name for f in dataclasses.fields(Speed)]
    assert names[-4:] == [
        "prefill_tokens_per_second",
        "time_to_first_token_s",
        "compute_flops_per_s",
        "prefill_note",
    ]
    values: dict[str, object] = {n: f"value {i}" for i, n in enumerate(names)}
    speed = Speed(**values)  # type: ignore[arg-type]
    built = _with_prefill(speed, 1.5, 2.5, 3, "note")
    assert built == evolve(
        speed,
        prefill_tokens_per_second=1.5,
        time_to_first_token_s=2.5,
        compute_flops_per_s=3,
        prefill_note="note",
    )
    assert repr(built) == repr(evolve(built))


def test_a_slotted_record_sets_its_slots_itself_with_the_dataclass_signature() -> None:
    """records._set_through_slots: the same parameters, defaults and errors as the
    dataclass __init__, each field set through its slot's descriptor."""
    import inspect

    assert inspect.signature(Point) == inspect.signature(Twin)
    assert "_set0" in Point.__init__.__code__.co_names
    assert (Point(1, label="x").x, Point(1).y, Point(1, label="x").label) == (1, 0, "x")
    for bad in ((), (1, 2, "a", 4)):
        with pytest.raises(TypeError):
            Point(*bad)
    with pytest.raises(TypeError):
        Point(1, z=3)  # type: ignore[call-arg]
    with pytest.raises(dataclasses.FrozenInstanceError):
        Point(1).x = 2  # type: ignore[misc]


def test_a_record_with_a_default_factory_keeps_the_dataclass_init() -> None:
    @record(slots=True)
    class Bag(Record):
        items: list[int] = dataclasses.field(default_factory=list)

    assert "_set0" not in Bag.__init__.__code__.co_names
    assert Bag().items == []
    assert Bag().items is not Bag().items


def test_results_are_built_in_their_field_order() -> None:
    """rate._result passes Result's fields positionally, in rate.RESULT_FIELDS's order,
    _base's values first and last: all three must agree with Result itself."""
    from canirun.estimate import rate
    from canirun.estimate.results import Result

    assert tuple(f.name for f in dataclasses.fields(Result)) == rate.RESULT_FIELDS
    from tests.test_estimate import CATALOG

    base = rate._base(next(iter(CATALOG.variants())))
    assert (*rate._LEADING, *rate._TRAILING) == tuple(base)


def test_memory_estimates_are_built_in_their_field_order() -> None:
    from canirun.estimate.results import MemoryEstimate

    assert tuple(f.name for f in dataclasses.fields(MemoryEstimate)) == (
        "weights_bytes",  # rate._memory passes them in this order
        "kv_cache_bytes",
        "overhead_bytes",
        "total_bytes",
        "gpu_bytes",
        "ram_bytes",
        "breakdown",
    )
