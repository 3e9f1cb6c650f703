"""The plan as it goes into plans/: block YAML with a header comment, its `agent`, its
`createdAt` and the computed executionOrder, one commented flow list per phase."""

from __future__ import annotations

import io
from typing import Any

from orchlib.events import now_iso
from orchlib.plan import Plan

# Keys first in this order (the seed's order); the agent's other keys keep theirs.
_FIRST = ("planId", "summary", "createdAt", "agent")


def render(data: dict[str, Any], plan: Plan, header: list[str], agent: Any) -> str:
    """The YAML text of `data` (the validated draft) as orchlib writes it into plans/."""
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap

    out = dict(data)
    out.setdefault("createdAt", now_iso()[:19] + "Z")
    if "agent" not in out and agent is not None:
        out["agent"] = agent
    out.pop("executionOrder", None)
    ordered = CommentedMap()
    for key in (*[k for k in _FIRST if k in out], *[k for k in out if k not in _FIRST]):
        ordered[key] = _block(out[key])
    ordered["executionOrder"] = _phases(plan)
    ordered.yaml_set_start_comment("\n".join(header))
    ordered.yaml_set_comment_before_after_key(
        "executionOrder", before="\nComputed by orchlib from dependsOn: each phase's tasks can "
        "run at the same time."
    )  # fmt: skip
    yaml = YAML()
    yaml.width = 100
    yaml.indent(mapping=2, sequence=4, offset=2)
    buffer = io.StringIO()
    yaml.dump(ordered, buffer)
    return buffer.getvalue()


def _phases(plan: Plan) -> Any:
    from ruamel.yaml.comments import CommentedSeq

    phases = CommentedSeq()
    # "  - [t1, t2]": the comments line up two spaces after the longest row
    column = 2 + max(len(f"  - [{', '.join(p)}]") for p in plan.phases)
    for number, phase in enumerate(plan.phases, start=1):
        row = CommentedSeq(phase)
        row.fa.set_flow_style()
        phases.append(row)
        minutes = sum(plan.tasks[t].estimated_minutes or 0 for t in phase)
        text = f"phase {number}: {_minutes(minutes)}"
        phases.yaml_add_eol_comment(text, number - 1, column=column)
    return phases


def _minutes(total: float) -> str:
    return f"{total:g} min of work" if total else "no estimate"


def _block(value: Any) -> Any:
    """`value` with multi-line strings as literal blocks, lists of scalars in flow style."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq
    from ruamel.yaml.scalarstring import LiteralScalarString

    if isinstance(value, str) and "\n" in value.strip("\n") and _block_safe(value):
        return LiteralScalarString(value)
    if isinstance(value, dict):
        mapped = CommentedMap()
        for key, item in value.items():
            mapped[key] = _block(item)
        return mapped
    if isinstance(value, list):
        seq = CommentedSeq(_block(item) for item in value)
        if all(not isinstance(item, dict | list) for item in value) and len(value) <= 12:
            seq.fa.set_flow_style()
        return seq
    return value


def _block_safe(text: str) -> bool:
    """Whether a literal block can hold `text`: no control character but tab and newline
    (anything else needs a quoted string's escapes)."""
    return text.replace("\n", "").replace("\t", "").isprintable()
