"""A subscriber takes the events it has a method for, by the event's name; the rest pass by."""

from __future__ import annotations

from dataclasses import fields

from orchlib import events as ev
from orchlib.bus import Bus, Subscriber


class Recorder(Subscriber):
    def __init__(self) -> None:
        self.seen: list[str] = []

    def on_task_done(self, event: ev.TaskDone) -> str:
        self.seen.append(f"done {event.task_id}")
        return "line"

    def on_task_up_to_date(self, event: ev.TaskUpToDate) -> None:
        self.seen.append(f"up to date {event.task_id}")


def test_events_go_to_the_method_named_after_them() -> None:
    recorder = Recorder()
    bus = Bus()
    bus.subscribe(recorder.handle)
    bus.publish(ev.TaskUpToDate("p", "t0"))
    bus.publish(ev.TaskProgress("p", "t1", 10, "x"))  # no method: passes by
    bus.publish(ev.TaskDone("p", "t1", "ok", 1, "term", 1.0))
    assert recorder.seen == ["up to date t0", "done t1"] and not bus.errors
    assert recorder.dispatch(ev.TaskDone("p", "t2", "", 1, "x", 1.0)) == "line"
    assert recorder.dispatch(ev.RunFinished("p")) is None


def test_every_event_names_its_own_method_and_it_is_no_field() -> None:
    events = [
        cls for cls in vars(ev).values() if isinstance(cls, type) and issubclass(cls, ev.Event)
    ]
    names = {cls.handler for cls in events if cls is not ev.Event}
    assert len(names) == len(events) - 1 and "on_budget_held" in names
    assert all("handler" not in {f.name for f in fields(cls)} for cls in events)
