"""Fast safe YAML loading into plain dicts, lists and scalars, with ruamel's safe semantics.

ruamel's safe loader spends most of its time composing nodes and resolving tags in
Python, even with the C parser of ruamel.yaml.clib. For plain documents we build the
data straight from the parser's events (C parser when installed) with ruamel's own
implicit-resolver table. Anything unusual (anchors, explicit tags, merge keys, a %YAML
directive, complex or duplicate keys, several documents) goes to ruamel's safe loader,
so the result, and every error it raises, is what `YAML(typ="safe").load` gives.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.constructor import ConstructorError
from ruamel.yaml.error import YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)
from ruamel.yaml.nodes import ScalarNode
from ruamel.yaml.parser import Parser
from ruamel.yaml.tag import Tag

STR = "tag:yaml.org,2002:str"
INT = "tag:yaml.org,2002:int"
# Implicit tags built here; others (merge `<<`, value `=`, ...) go to ruamel's loader.
_SIMPLE = frozenset(
    f"tag:yaml.org,2002:{name}" for name in ("bool", "float", "int", "null", "timestamp")
)
_ENDS = (MappingEndEvent, SequenceEndEvent)


# The C parser of ruamel.yaml.clib when installed, then the pure-Python one.
_MODES = (False, True) if YAML(typ="safe").Parser is not Parser else (True,)


class _Fallback(Exception):
    """The document needs ruamel's full safe loader (in pure Python for a `directive`)."""

    def __init__(self, directive: bool = False) -> None:
        super().__init__()
        self.directive = directive


def load_yaml(text: str) -> Any:
    """The data of a single YAML document (None when empty); raises ruamel's YAMLError.

    libyaml (the C parser) follows YAML 1.1 in places where ruamel's own parser follows
    1.2 (it refuses `[ntfy://x]`, say): a document the C parser refuses is parsed again in
    pure Python, so the outcome and every message do not depend on ruamel.yaml.clib.
    """
    for pure in _MODES:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # e.g. a reused anchor: valid YAML, no news
                return _load(text, pure)
        except YAMLError:
            if pure:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _load(text: str, pure: bool) -> Any:
    try:
        return _Builder(YAML(typ="safe", pure=pure)).build(text)
    except _Fallback as fallback:
        # Only ruamel's own parser tells its resolver about a %YAML directive.
        return YAML(typ="safe", pure=pure or fallback.directive).load(text)


class _Builder:
    """Builds containers from events; a stack of (container, pending key or _NO_KEY)."""

    def __init__(self, yaml: YAML) -> None:
        self.yaml = yaml
        self.table: dict[str | None, list[tuple[str, Any]]] = yaml.resolver.versioned_resolver
        self.stack: list[list[Any]] = []
        self.root: Any = None
        self.documents = 0

    def build(self, text: str) -> Any:
        for event in self.yaml.parse(text):
            kind = type(event)
            if kind is ScalarEvent:
                self.add(self.scalar(event))
            elif kind is MappingStartEvent or kind is SequenceStartEvent:
                self.open(event, {} if kind is MappingStartEvent else [])
            elif kind in _ENDS:
                self.add(self.stack.pop()[0])
            elif kind is DocumentStartEvent:
                self.document(event)
            elif kind is AliasEvent:
                raise _Fallback
        return self.root

    def document(self, event: Any) -> None:
        self.documents += 1
        if event.version is not None:
            raise _Fallback(directive=True)
        if self.documents > 1:
            raise _Fallback

    def open(self, event: Any, container: dict[Any, Any] | list[Any]) -> None:
        if event.anchor is not None or event.tag not in (None, "!"):
            raise _Fallback
        self.stack.append([container, _NO_KEY])

    def add(self, value: Any) -> None:
        if not self.stack:
            self.root = value
            return
        top = self.stack[-1]
        container, key = top
        if type(container) is list:
            container.append(value)
        elif key is _NO_KEY:
            if type(value) in (dict, list) or value in container:
                raise _Fallback  # complex or duplicate key: let ruamel report it
            top[1] = value
        else:
            container[key] = value
            top[1] = _NO_KEY

    def scalar(self, event: Any) -> Any:
        if event.anchor is not None or event.tag not in (None, "!"):
            raise _Fallback
        value: str = event.value
        if not event.implicit[0]:
            return value
        tag = self.resolve(value)
        if tag == STR:
            return value
        if tag not in _SIMPLE:
            raise _Fallback
        try:
            return self.construct(tag, value, event)
        except ValueError as error:  # 2024-13-45, an int of 5000 digits: say where
            raise ConstructorError(
                None, None, f"cannot read {value[:40]!r}: {error}", event.start_mark
            ) from None

    def construct(self, tag: str, value: str, event: Any) -> Any:
        if tag == INT and value.isdigit() and (value[0] != "0" or value == "0"):
            return int(value)
        node = ScalarNode(Tag(suffix=tag), value, event.start_mark, event.end_mark)
        return self.yaml.constructor.construct_object(node)

    def resolve(self, value: str) -> str:
        """The implicit tag of a plain scalar, as ruamel's VersionedResolver.resolve."""
        for tag, regexp in self.table.get(value[:1], ()):
            if regexp.match(value):
                return tag
        for tag, regexp in self.table.get(None, ()):
            if regexp.match(value):
                return tag
        return STR


_NO_KEY = object()


Position = tuple[int, int]


def positions(text: str, wanted: Iterable[tuple[Any, ...]]) -> dict[tuple[Any, ...], Any]:
    """0-based (line, col) of the key and of the value of each wanted path and its ancestors.

    Walks the parser's events only (no data is built), so locating problems in a big plan
    costs a parse, not a round-trip load. A path maps to ((key line, col), (value line,
    col)); list items have their own start as key. Paths past a syntax error, through
    merge keys or under complex keys are missing: callers fall back to an ancestor.
    """
    prefixes = {path[:end] for path in wanted for end in range(len(path) + 1)}
    # libyaml counts lines differently when NEL, LS or PS occur; ruamel's own parser is the
    # reference (it is what round-trip `.lc` positions use).
    odd_breaks = any(char in text for char in "\x85\u2028\u2029")
    for pure in (True,) if odd_breaks else _MODES:
        locator = _Locator(prefixes)
        try:
            for event in YAML(typ="safe", pure=pure).parse(text):
                locator.see(event)
            break
        except (YAMLError, RecursionError, ValueError):
            pass
    return locator.found


class _Locator:
    """Follows the key path of each event; frames are [path or None, is_list, index/key, mark]."""

    def __init__(self, prefixes: set[tuple[Any, ...]]) -> None:
        self.prefixes = prefixes
        self.found: dict[tuple[Any, ...], Any] = {}
        self.stack: list[list[Any]] = []

    def see(self, event: Any) -> None:
        kind = type(event)
        if kind in _ENDS:
            self.stack.pop()
        elif kind in _NODES:
            path = self.place(event)
            if kind is not ScalarEvent and kind is not AliasEvent:
                self.stack.append([path, kind is SequenceStartEvent, 0, None])

    def place(self, event: Any) -> tuple[Any, ...] | None:
        """The path of the node `event` starts (None: not tracked), recording it if wanted."""
        here = _mark(event.start_mark)
        if not self.stack:
            path: tuple[Any, ...] | None = ()
            key_at = here
        else:
            frame = self.stack[-1]
            path, key_at = self.child(frame, event, here)
        if path is not None and path in self.prefixes:
            self.found[path] = (key_at, here)
        return path

    def child(self, frame: list[Any], event: Any, here: Position) -> tuple[Any, Position]:
        parent, is_list, slot, key_at = frame
        if is_list:
            frame[2] = slot + 1
            return (None if parent is None else (*parent, slot)), here
        if frame[3] is None:  # a key: remember it, it is no node of the data
            frame[2] = event.value if type(event) is ScalarEvent else _COMPLEX
            frame[3] = here
            return None, here
        frame[3] = None
        return (None if parent is None or slot is _COMPLEX else (*parent, slot)), key_at


def _mark(mark: Any) -> Position:
    return (mark.line, mark.column)


_NODES = (ScalarEvent, MappingStartEvent, SequenceStartEvent, AliasEvent)
_COMPLEX = object()
