"""schedule: Kahn layers, cycle finding and executionOrder checks on task graphs."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchlib.plan.schedule import check_order, find_cycle, find_cycles, known_list, layers

SEED = {"t1": [], "t2": [], "t3": ["t2"], "t4": ["t1", "t3"]}


def test_layers_of_the_seed_plan_match_its_execution_order() -> None:
    assert layers(SEED) == (("t1", "t2"), ("t3",), ("t4",))


def test_layers_keep_plan_order_within_a_layer() -> None:
    graph = {"c": [], "a": [], "z": ["a"], "b": ["c"], "y": []}
    assert layers(graph) == (("c", "a", "y"), ("z", "b"))


def test_a_task_goes_one_layer_after_its_last_dependency() -> None:
    graph = {"a": [], "b": ["a"], "c": ["b"], "d": ["a"], "e": ["c", "d"]}
    assert layers(graph) == (("a",), ("b", "d"), ("c",), ("e",))


def test_layers_ignore_unknown_and_repeated_dependencies() -> None:
    assert layers({"a": ["zz"], "b": ["a", "a"]}) == (("a",), ("b",))


def test_layers_of_an_empty_plan_are_empty() -> None:
    assert layers({}) == ()


def test_layers_refuse_a_cycle_and_name_it() -> None:
    with pytest.raises(ValueError, match=r"dependency cycle: a -> b -> a"):
        layers({"a": ["b"], "b": ["a"], "c": []})


def test_find_cycle_returns_ids_with_the_first_repeated() -> None:
    assert find_cycle({"t1": ["t3"], "t2": [], "t3": ["t1"]}) == ["t1", "t3", "t1"]


def test_find_cycle_starts_from_the_first_task_in_plan_order() -> None:
    graph = {"x": ["y"], "y": ["z"], "z": ["y"]}
    assert find_cycle(graph) == ["y", "z", "y"]


def test_find_cycle_sees_a_self_dependency() -> None:
    assert find_cycle({"a": [], "b": ["b"]}) == ["b", "b"]


def test_find_cycle_is_none_for_a_dag() -> None:
    assert find_cycle(SEED) is None


def test_find_cycle_handles_a_deep_chain_without_recursion() -> None:
    chain = {f"t{i}": [f"t{i - 1}"] if i else [] for i in range(20_000)}
    assert find_cycle(chain) is None
    chain["t0"] = ["t19999"]
    cycle = find_cycle(chain)
    assert cycle is not None and len(cycle) == 20_001


def test_find_cycles_reports_each_disjoint_cycle_once() -> None:
    graph = {"a": ["b"], "b": ["a"], "c": ["c"], "d": ["e"], "e": ["d", "a"]}
    assert find_cycles(graph) == [["a", "b", "a"], ["c", "c"], ["d", "e", "d"]]


def test_check_order_accepts_a_correct_order() -> None:
    assert check_order([["t1", "t2"], ["t3"], ["t4"]], SEED) == []


def test_check_order_reports_unknown_twice_and_missing() -> None:
    issues = check_order([["t1", "t2", "t9"], ["t3", "t1"]], SEED)
    assert issues == [
        ((0, 2), "unknown task 't9' (known: t1, t2, t3, t4)"),
        ((1, 1), "task 't1' is listed twice (first in phase 1)"),
        ((), "task 't4' is not in any phase"),
    ]


def test_check_order_names_several_missing_tasks() -> None:
    assert check_order([["t1"]], SEED) == [((), "tasks 't2', 't3', 't4' are not in any phase")]


def test_check_order_wants_each_task_strictly_after_its_dependencies() -> None:
    issues = check_order([["t1", "t2", "t3"], ["t4"]], SEED)
    assert issues == [((0, 2), "task 't3' (phase 1) must come after its dependency 't2' (phase 1)")]
    issues = check_order([["t1", "t3"], ["t2"], ["t4"]], SEED)
    assert issues == [((0, 1), "task 't3' (phase 1) must come after its dependency 't2' (phase 2)")]


def test_known_list_is_cut_after_ten() -> None:
    assert known_list(["a", "b"]) == "a, b"
    assert known_list([f"t{i}" for i in range(12)]) == "t0, t1, t2, t3, t4, t5, t6, t7, t8, t9, ..."


@st.composite
def dags(draw: st.DrawFn) -> dict[str, list[str]]:
    """A random DAG in plan order: each task depends only on tasks of a hidden earlier rank."""
    size = draw(st.integers(0, 30))
    rank = draw(st.permutations(range(size)))
    names = [f"t{i}" for i in range(size)]
    graph: dict[str, list[str]] = {}
    for i in range(size):
        earlier = [names[j] for j in range(size) if rank[j] < rank[i]]
        graph[names[i]] = draw(st.lists(st.sampled_from(earlier), max_size=4)) if earlier else []
    return graph


@given(dags())
def test_layers_respect_dependencies_and_plan_order(graph: dict[str, list[str]]) -> None:
    phases = layers(graph)
    layer_of = {task: n for n, phase in enumerate(phases) for task in phase}
    assert sorted(layer_of) == sorted(graph) and sum(map(len, phases)) == len(graph)
    order = list(graph)
    for task, deps in graph.items():
        assert layer_of[task] == max((layer_of[d] + 1 for d in deps), default=0)
    for phase in phases:
        assert list(phase) == sorted(phase, key=order.index)
    assert check_order(phases, graph) == []
    assert find_cycle(graph) is None


@given(dags(), st.data())
def test_an_injected_cycle_is_found_along_real_edges(
    graph: dict[str, list[str]], data: st.DataObject
) -> None:
    if not graph:
        graph = {"t0": []}
    path = data.draw(st.lists(st.sampled_from(list(graph)), min_size=1, max_size=6, unique=True))
    for here, there in zip(path, path[1:] + path[:1], strict=True):
        graph[here] = [*graph[here], there]
    cycle = find_cycle(graph)
    assert cycle is not None and cycle[0] == cycle[-1] and len(cycle) >= 2
    assert len(set(cycle[:-1])) == len(cycle) - 1
    for here, there in itertools.pairwise(cycle):
        assert there in graph[here]
    with pytest.raises(ValueError, match="dependency cycle"):
        layers(graph)
