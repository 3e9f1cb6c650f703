"""What a task's processes inherit from the environment they start in (DESIGN §13).

`EnvPolicy` is the plan's `environment` key, resolved for one task; `Logins` names the
variables agent CLIs log in with. Both are plain data: a `Job` carries them to whatever
starts the process, and `compose` builds the environment there, over that host's own
(the dask worker's environment on a cluster, DESIGN §8). `Logins` is the agent profiles'
record (orchlib.agents, standard library only, like this module): a dask worker imports
these two alone.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the agent profiles load only where a task's environment is composed
    from orchlib.agents.base import Logins

INHERIT_MODES = ("all", "core", "none")
CORE = ("PATH", "HOME", "USER", "LOGNAME", "SHELL", "TMPDIR", "LANG", "TERM", "TZ")
CORE_PREFIXES = ("LC_",)
DEFAULT_EXCLUDE = ("*KEY*", "*SECRET*", "*TOKEN*", "*PASSWORD*", "*CREDENTIAL*")


@dataclass(frozen=True)
class EnvPolicy:
    """The `environment` of a task: what it inherits, withholds, keeps and sets."""

    inherit: str = "all"
    exclude: tuple[str, ...] = DEFAULT_EXCLUDE
    include: tuple[str, ...] = ()
    set: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class EnvLayer:
    """One level's `environment` as written (plan, project or task); None: not given."""

    inherit: str | None = None
    exclude: tuple[str, ...] | None = None
    include: tuple[str, ...] | None = None
    set: Mapping[str, str] | None = None


def nearer(outer: EnvPolicy, layer: EnvLayer) -> EnvPolicy:
    """`outer` with the fields `layer` gives: the nearest wins field by field; `set` merges
    variable by variable (a project's NODE_ENV does not drop the plan's other settings)."""
    return EnvPolicy(
        inherit=outer.inherit if layer.inherit is None else layer.inherit,
        exclude=outer.exclude if layer.exclude is None else layer.exclude,
        include=outer.include if layer.include is None else layer.include,
        set=dict(outer.set) if layer.set is None else {**outer.set, **layer.set},
    )


def matches(name: str, patterns: Iterable[str]) -> bool:
    """Whether a variable name matches one of the globs, ignoring case."""
    return _compiled(tuple(patterns)).match(name) is not None


@functools.lru_cache(maxsize=64)
def _compiled(patterns: tuple[str, ...]) -> re.Pattern[str]:
    """One regex for a list of globs (a policy's are matched against every variable)."""
    if not patterns:
        return re.compile(r"(?!)")  # matches nothing
    return re.compile("|".join(fnmatch.translate(p) for p in patterns), re.IGNORECASE)


class _Filter:
    """A policy and its logins made ready to judge every variable of an environment."""

    def __init__(self, policy: EnvPolicy, logins: Logins) -> None:
        self.inherit = policy.inherit
        self.own, self.others = frozenset(logins.own), frozenset(logins.others)
        self.include = _compiled(tuple(policy.include)).match
        self.exclude = _compiled(tuple(policy.exclude)).match

    def withheld(self, name: str) -> bool:
        """Kept out as a secret: another CLI's login, or a name `exclude` matches."""
        return name in self.others or self.exclude(name) is not None

    def keeps(self, name: str) -> bool:
        """Whether a variable of the base environment reaches the process."""
        if name in self.own or self.include(name) is not None:
            return True
        return self._inherited(name) and not self.withheld(name)

    def _inherited(self, name: str) -> bool:
        if self.inherit == "all":
            return True
        return self.inherit == "core" and (name in CORE or name.startswith(CORE_PREFIXES))


def compose(
    base: Mapping[str, str],
    policy: EnvPolicy | None,
    logins: Logins,
    overlay: Mapping[str, str],
) -> dict[str, str]:
    """The environment of a process: `base` filtered by `policy`, then the policy's `set`,
    then `overlay` (orchlib's own variables and the agent's `env`). No policy: all of
    `base` (a process of orchlib's own)."""
    if policy is None:
        return {**base, **overlay}
    keeps = _Filter(policy, logins).keeps
    env = {name: value for name, value in base.items() if keeps(name)}
    env.update(policy.set)
    env.update(overlay)
    return env


class Snapshot:
    """An environment taken once (the one a run started in), filtered once per distinct
    policy: every task a run starts composes its environment over the same base, so the
    judging of each variable is done once per policy, not once per task."""

    def __init__(self, base: Mapping[str, str]) -> None:
        self._base = dict(base)
        self._kept: dict[tuple[object, ...], dict[str, str]] = {}

    def compose(
        self, policy: EnvPolicy | None, logins: Logins, overlay: Mapping[str, str]
    ) -> dict[str, str]:
        """`compose(base, policy, logins, overlay)` over the snapshot."""
        if policy is None:
            return {**self._base, **overlay}
        key = (policy.inherit, policy.exclude, policy.include, logins.own, logins.others)
        kept = self._kept.get(key)
        if kept is None:
            keeps = _Filter(policy, logins).keeps
            kept = self._kept[key] = {k: v for k, v in self._base.items() if keeps(k)}
        env = dict(kept)
        env.update(policy.set)
        env.update(overlay)
        return env


def withheld(base: Collection[str], policy: EnvPolicy, logins: Logins) -> list[str]:
    """The names of `base` kept out as secrets (sorted); those `inherit` merely leaves out
    are not listed (PWD is not a secret)."""
    judge = _Filter(policy, logins)
    return sorted(name for name in base if not judge.keeps(name) and judge.withheld(name))
