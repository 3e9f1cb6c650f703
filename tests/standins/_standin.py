"""Shared parts of the stand-in agent CLIs (claude, codex, gemini, aider, opencode).

A stand-in is a real executable that parses its CLI's own flags strictly (an unknown flag,
a bad choice or a missing value exits 2 with a message on stderr, as the real parsers do
for a wrong command line), records how it was called, and prints a short run in the real
CLI's headless output format.

Environment:
  STANDIN_RECORD      file to append one JSON line per call: program, argv, cwd, env
                      (TERMINAL_ID, ORCH_*, and the names in STANDIN_RECORD_ENV), stdin (as
                      read, or null), prompt (the whole message the CLI took), session_id, pid,
                      time (epoch seconds of the call)
  STANDIN_RECORD_ENV  comma-separated names of further environment variables to record
  STANDIN_MODE        done (default) | error | question | approve | reject (a reviewer's
                      verdict, DESIGN §16) | silent-exit (no final report,
                      exit 0) | denied (the agent tries to report DONE through a shell tool
                      call that is denied, so the marker is only in the call's *input*; it
                      then exits 0 without a report; aider runs no tools: as silent-exit)
  STANDIN_SUMMARY     the text of the final marker (default "stand-in done")
  STANDIN_PAD         claude, denied mode: characters of padding after the marker in the
                      denied tool call's input (one event line of over a MiB: not a report)
  STANDIN_LIMIT_UNTIL epoch seconds: until then the CLI's account is over its usage limit,
                      so the stand-in reports the limit as the real CLI does (its message,
                      with this reset time where the CLI says one) and exits; afterwards it
                      runs normally. A real limit outlives one call, so this is a time.
  STANDIN_NO_CODE     aider: the reply has no edit blocks holding markers (for a custom
                      command running aider, whose plain output counts every line)
  STANDIN_TOUCH       claude: a file name; the stand-in writes `<name>.<ORCH_ATTEMPT>` in its
                      working folder before it reports anything (a limit included), as the
                      CLI's file tool would: work done before the run ended
  STANDIN_DELAY       seconds to think (sleep) after the call is recorded, before output
  STANDIN_STEPS       claude, codex, opencode: before the usual run, this many model steps,
                      each printing the CLI's own usage event for the step (claude: an
                      assistant message, 64 tokens; codex: turn.completed with the running
                      totals, 1,050 tokens a turn; opencode: step_finish, $0.05 and 1,050
                      tokens) and then working (sleeping) STANDIN_STEP_SLEEP seconds
                      (default 0.5): a runaway attempt, whose stop mid-way is observable
  TERMINAL_ID         the terminal id the markers carry
  STANDIN_PLAN        (`doit draft`) a file whose text the agent writes as its plan, to the
                      path the prompt names on its `**Plan file:**` line, as the CLI's own
                      file tool would: it reads no environment variable and refuses a path
                      outside its working folder (exit 1)
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from typing import NoReturn

MODES = ("done", "error", "question", "silent-exit", "denied", "approve", "reject")


@dataclass(frozen=True)
class Opt:
    """One option: `flag` (no value), `value`, `optional` (value if one follows), `variadic`."""

    names: tuple[str, ...]
    kind: str = "flag"
    choices: tuple[str, ...] = ()
    once: bool = False  # clap's default: a value option given twice is an error

    @property
    def key(self) -> str:
        """The name `Parsed` files it under: the first long name."""
        return next((n for n in self.names if n.startswith("--")), self.names[0])


@dataclass
class Parsed:
    """Options by their first long name, and positional arguments in order."""

    values: dict[str, list[str]] = field(default_factory=dict)
    positionals: list[str] = field(default_factory=list)

    def has(self, name: str) -> bool:
        return name in self.values

    def last(self, name: str) -> str | None:
        found = self.values.get(name)
        return found[-1] if found else None


def die(program: str, message: str, code: int = 2) -> NoReturn:
    """Exit with `message` on stderr, as a CLI rejecting its command line does."""
    print(f"{program}: error: {message}", file=sys.stderr)
    sys.exit(code)


def parse(program: str, argv: list[str], opts: list[Opt], hyphen_values: bool = True) -> Parsed:
    """Parse `argv` strictly against `opts`; `--` ends the options."""
    table = {name: opt for opt in opts for name in opt.names}
    parsed = Parsed()
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            parsed.positionals.extend(argv[i:])
            break
        if arg == "-" or not arg.startswith("-"):
            parsed.positionals.append(arg)
            continue
        name, attached = _split(arg, table)
        opt = table.get(name)
        if opt is None:
            die(program, f"unexpected argument '{arg}' found")
        values, i = _take(program, opt, arg, attached, argv, i, hyphen_values)
        _store(program, parsed, opt, values)
    return parsed


def _split(arg: str, table: dict[str, Opt]) -> tuple[str, str | None]:
    """`--name=value` / `-xVALUE` into name and attached value."""
    if arg.startswith("--"):
        name, eq, value = arg.partition("=")
        return name, (value if eq else None)
    if len(arg) > 2 and arg[:2] in table and table[arg[:2]].kind != "flag":
        return arg[:2], arg[2:]
    return arg, None


def _take(
    program: str,
    opt: Opt,
    arg: str,
    attached: str | None,
    argv: list[str],
    i: int,
    hyphen_values: bool,
) -> tuple[list[str], int]:
    """The values of one option occurrence and the index after them."""
    if opt.kind == "flag":
        if attached is not None:
            die(program, f"option '{arg}' does not take a value")
        return [], i
    if attached is not None:
        return [attached], i
    if opt.kind == "value":
        if i >= len(argv) or (argv[i].startswith("-") and not hyphen_values and argv[i] != "-"):
            die(program, f"a value is required for '{arg}' but none was supplied")
        return [argv[i]], i + 1
    values: list[str] = []
    while i < len(argv) and not argv[i].startswith("-"):
        values.append(argv[i])
        i += 1
        if opt.kind == "optional":
            break
    return values, i


def _store(program: str, parsed: Parsed, opt: Opt, values: list[str]) -> None:
    """Record one occurrence, checking choices and repetition."""
    key = opt.key
    for value in values:
        if opt.choices and value not in opt.choices:
            die(program, f"invalid value '{value}' for '{key}' (choices: {', '.join(opt.choices)})")
    if opt.once and key in parsed.values:
        die(program, f"the argument '{key}' cannot be used multiple times")
    parsed.values.setdefault(key, []).extend(values)


def mode() -> str:
    """The behaviour asked for by STANDIN_MODE."""
    wanted = os.environ.get("STANDIN_MODE", "done")
    if wanted not in MODES:
        die("standin", f"STANDIN_MODE must be one of {', '.join(MODES)}, got {wanted!r}")
    return wanted


def limit_until() -> float | None:
    """The reset time of the usage limit in force now (STANDIN_LIMIT_UNTIL), if any."""
    raw = os.environ.get("STANDIN_LIMIT_UNTIL")
    if not raw:
        return None
    until = float(raw)
    return until if until > time.time() else None


def touch() -> None:
    """With STANDIN_TOUCH: leave a file of this attempt's work in the working folder."""
    name = os.environ.get("STANDIN_TOUCH")
    if name:
        attempt = os.environ.get("ORCH_ATTEMPT", "0")
        with open(f"{name}.{attempt}", "w") as fh:
            fh.write(f"attempt {attempt}\n")


def terminal_id() -> str:
    return os.environ.get("TERMINAL_ID", "term-standin")


def summary() -> str:
    return os.environ.get("STANDIN_SUMMARY", "stand-in done")


def marker(kind: str) -> str:
    """A `kind` marker with this attempt's terminal id and the summary."""
    return f"[{kind}:{terminal_id()}] {summary()}"


def final_marker() -> str | None:
    """The marker line ending the run, or None for silent-exit and denied."""
    kinds = {"done": "DONE", "error": "ERROR", "question": "QUESTION", "approve": "APPROVE",
             "reject": "REJECT"}  # fmt: skip
    kind = kinds.get(mode())
    return marker(kind) if kind else None


def padding() -> str:
    """STANDIN_PAD characters of filler (none by default)."""
    return "x" * int(os.environ.get("STANDIN_PAD", "0"))


def denied() -> bool:
    """Whether the report is attempted through a tool call that is denied."""
    return mode() == "denied"


def read_stdin() -> str:
    """The whole of stdin (the prompt, when it is delivered there)."""
    return sys.stdin.read()


def record(
    program: str,
    argv: list[str],
    stdin: str | None,
    session_id: str | None,
    prompt: str | None = None,
) -> None:
    """Append this call to STANDIN_RECORD, if set; `prompt` is the message the CLI took."""
    path = os.environ.get("STANDIN_RECORD")
    if not path:
        return
    extra = {name for name in os.environ.get("STANDIN_RECORD_ENV", "").split(",") if name}
    env = {
        k: v
        for k, v in os.environ.items()
        if k == "TERMINAL_ID" or k.startswith("ORCH_") or k in extra
    }
    entry = {
        "program": program,
        "argv": argv,
        "cwd": os.getcwd(),
        "env": env,
        "stdin": stdin,
        "prompt": prompt,
        "session_id": session_id,
        "pid": os.getpid(),
        "time": time.time(),
    }
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps(entry) + "\n")
    time.sleep(float(os.environ.get("STANDIN_DELAY") or 0))


def steps() -> list[int]:
    """The step numbers (1, 2, ...) STANDIN_STEPS asks for, none by default."""
    return list(range(1, int(os.environ.get("STANDIN_STEPS") or 0) + 1))


def work() -> None:
    """Work on a step: sleep STANDIN_STEP_SLEEP seconds."""
    time.sleep(float(os.environ.get("STANDIN_STEP_SLEEP") or 0.5))


def emit(event: dict[str, object]) -> None:
    """Print one JSONL event, compact as the real CLIs print them."""
    print(json.dumps(event, separators=(",", ":")), flush=True)


_PLAN_FILE = re.compile(r"\*\*Plan file:\*\* `([^`]+)`")


def write_plan(prompt: str | None) -> None:
    """With STANDIN_PLAN: write its text to the plan file the prompt names (`doit draft`)."""
    source = os.environ.get("STANDIN_PLAN")
    if not source:
        return
    found = _PLAN_FILE.search(prompt or "")
    if found is None:
        die("standin", "STANDIN_PLAN is set but the prompt names no plan file", code=1)
    target = os.path.realpath(os.path.join(os.getcwd(), found[1]))
    if os.path.commonpath([target, os.path.realpath(os.getcwd())]) != os.path.realpath(os.getcwd()):
        die("standin", f"refusing to write outside the working folder: {target}", code=1)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with open(source, encoding="utf-8") as src, open(target, "w", encoding="utf-8") as out:
        out.write(src.read())
