"""The `notify` key of a plan: apprise URLs and commands, and the events each wants."""

from __future__ import annotations

from orchlib.plan import NotifyTarget, codestrings
from orchlib.plan.agentspec import argv_list
from orchlib.plan.checks import Issues, KeyPath, choice, get, items, mapping, q, text

EVENTS = (
    "task_error", "task_question", "usage_limit", "phase_completed", "plan_completed",
    "plan_failed", "task_approval", "budget_spent",
)  # fmt: skip


def notify(issues: Issues, value: object, path: KeyPath) -> tuple[NotifyTarget, ...]:
    """The notification targets."""
    return tuple(items(issues, value, path, _target))


def _target(issues: Issues, value: object, path: KeyPath) -> NotifyTarget | None:
    if isinstance(value, str):
        url = _url(issues, value, path)
        return None if url is None else NotifyTarget(url=url, events=EVENTS)
    m = mapping(issues, value, path, (), ("command", "url", "events"))
    if m is None:
        return None
    if ("command" in m) == ("url" in m):
        issues.add(path, "a notify target needs exactly one of 'command' or 'url'")
    command = get(issues, m, "command", path, argv_list, ())
    codestrings.check(issues, command, lambda i: (*path, "command", i), codestrings.NOTIFY_TEXT,
                      CODE_ADVICE)  # fmt: skip
    url = get(issues, m, "url", path, _url, "")
    events = get(issues, m, "events", path, _events, EVENTS)
    return NotifyTarget(command=command, url=url, events=events) if command or url else None


CODE_ADVICE = 'pass it as its own argument ([sh, -c, \'notify-send "$1"\', sh, "{title}"])'


def _url(issues: Issues, value: object, path: KeyPath) -> str | None:
    url = text(issues, value, path)
    if url is not None and "://" not in url:
        issues.add(path, f"{q(url)} is not an apprise URL (like 'ntfy://topic')")
        return None
    return url


def _events(issues: Issues, value: object, path: KeyPath) -> tuple[str, ...] | None:
    found = items(issues, value, path, choice(EVENTS))
    if isinstance(value, list) and not value:
        issues.add(path, "list at least one event")
    return tuple(found) or None
