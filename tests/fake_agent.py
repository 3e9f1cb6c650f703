#!/usr/bin/env python3
"""A fake coding agent: a real executable driven by a scenario file.

Usage: fake_agent.py SCENARIO.json [RECORD.jsonl]

The scenario maps task ids to a list of attempts; attempt N (env ORCH_ATTEMPT) plays
entry N-1 (the last one repeats). An attempt is a list of steps, each a one-key object:

  {"progress": [45, "text"]}   print a PROGRESS marker with our terminal id
  {"done": "summary"}          print a DONE marker       ("error", "question" alike)
  {"say": "text"}              print a line; "{tid}" is replaced by our terminal id
  {"echo_done": "summary"}     print `echo "[DONE:<tid>] summary"` (a shell line quoting a marker)
  {"write": ["path", "text"]}  write a file (relative to the project folder)
  {"try_write": ["path", "text"]}  append text ("{tid}" replaced) to a file, printing
                               `WROTE path` or `REFUSED path: <reason>` (a sandbox's test)
  {"term_grace": ["path", 0.3]}  on SIGTERM: wait 0.3 s, write the file, exit 143 (an agent
                               that shuts down cleanly when asked)
  {"sleep": 0.5}               sleep
  {"exit": 3}                  exit with that code now
  {"hang": true}               sleep forever, printing nothing
  {"chat": 0.05}               print a line every N seconds forever
  {"ignore_term": true}        ignore SIGTERM from here on
  {"spawn_child": true}        start a child process in our group that sleeps forever
                               (a path instead of true: also write the child's pid there)
  {"spawn_setsid": "path"}     start a grandchild that calls setsid (leaves our group and
                               session) and sleeps forever; its pid is written to path
  {"wait_file": "path"}        wait until the file exists, printing nothing (a test's go signal)
  {"read_stdin_line": true}    wait for one line on stdin (a stalled agent waiting for Enter)
  {"progress_until": ["path", 0.01]}  print PROGRESS lines every N seconds until the file exists
  {"git": ["commit", "-qam", "msg"]}  run git with these arguments here (as "agent <agent@example>")
  {"write_plan": PLAN}         write PLAN to $ORCH_PLAN_FILE (`doit draft`): an object as JSON,
                               a string as is
  {"print_plan": PLAN}         print PLAN (as above) in a ```yaml fence (an agent that cannot
                               write files prints its plan after DONE)
A task missing from the scenario reports 50% progress and DONE "did <task>".
A reviewer (env ORCH_REVIEW set, DESIGN §16) plays the entry "<task>.review" by the task's
attempt number; missing, it prints APPROVE "looks right".
Every start appends a JSON line to RECORD: task, attempt, terminal id, cwd, pid, prompt.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time


def main() -> int:
    scenario = {}
    if len(sys.argv) > 1:
        with open(sys.argv[1]) as fh:
            scenario = json.load(fh)
    record = sys.argv[2] if len(sys.argv) > 2 else None
    tid = os.environ["TERMINAL_ID"]
    task = os.environ["ORCH_TASK_ID"]
    reviewing = bool(os.environ.get("ORCH_REVIEW"))
    task = f"{task}.review" if reviewing else task
    attempt = int(os.environ.get("ORCH_ATTEMPT", "1"))
    reads_stdin = not sys.stdin.isatty() and os.environ.get("FAKE_NO_STDIN") != "1"
    prompt = sys.stdin.read() if reads_stdin else ""
    if record:
        entry = {
            "task": task,
            "attempt": attempt,
            "terminal_id": tid,
            "cwd": os.getcwd(),
            "pid": os.getpid(),
            "prompt": prompt,
            "start": time.time(),
        }
        with open(record, "a") as fh:
            fh.write(json.dumps(entry) + "\n")
    default = (
        [[{"say": "[APPROVE:{tid}] looks right"}]]
        if reviewing
        else [[{"progress": [50, "working"]}, {"done": f"did {task}"}]]
    )
    attempts = scenario.get(task) or default
    steps = attempts[min(attempt, len(attempts)) - 1]
    for step in steps:
        code = play(step, tid)
        if code is not None:
            return code
    return 0


def out(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def play(step: dict, tid: str) -> int | None:
    ((kind, arg),) = step.items()
    if kind == "progress":
        out(f"[PROGRESS:{tid}] {arg[0]}% - {arg[1]}")
    elif kind in ("done", "error", "question"):
        out(f"[{kind.upper()}:{tid}] {arg}")
    elif kind == "say":
        out(str(arg).replace("{tid}", tid))
    elif kind == "echo_done":
        out(f'$ echo "[DONE:{tid}] {arg}"')
    elif kind == "write":
        os.makedirs(os.path.dirname(arg[0]) or ".", exist_ok=True)
        with open(arg[0], "w") as fh:
            fh.write(arg[1])
    elif kind == "try_write":
        try:
            with open(arg[0], "a") as fh:
                fh.write(str(arg[1]).replace("{tid}", tid) + "\n")
        except OSError as exc:
            out(f"REFUSED {arg[0]}: {exc.strerror}")
        else:
            out(f"WROTE {arg[0]}")
    elif kind == "term_grace":
        signal.signal(signal.SIGTERM, lambda *_: shut_down(arg[0], float(arg[1])))
    elif kind == "sleep":
        time.sleep(float(arg))
    elif kind == "exit":
        return int(arg)
    elif kind == "hang":
        while True:
            time.sleep(3600)
    elif kind == "chat":
        while True:
            out("still thinking...")
            time.sleep(float(arg))
    elif kind == "ignore_term":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    elif kind == "spawn_child":
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
        if isinstance(arg, str):
            with open(arg + ".tmp", "w") as fh:
                fh.write(str(child.pid))
            os.replace(arg + ".tmp", arg)  # a waiting test never reads it half-written
    elif kind == "spawn_setsid":
        code = (
            "import os, sys, time; os.setsid(); open(sys.argv[1] + '.tmp', 'w').write("
            "str(os.getpid())); os.replace(sys.argv[1] + '.tmp', sys.argv[1]); time.sleep(3600)"
        )
        subprocess.Popen([sys.executable, "-c", code, arg])
        while not os.path.exists(arg):
            time.sleep(0.01)
    elif kind == "wait_file":
        while not os.path.exists(arg):
            time.sleep(0.02)
    elif kind == "git":
        ident = ["-c", "user.name=agent", "-c", "user.email=agent@example"]
        subprocess.run(["git", *ident, *arg], check=True, stdout=sys.stderr)
    elif kind == "read_stdin_line":
        sys.stdin.readline()
        out("got Enter")
    elif kind in ("write_plan", "print_plan"):
        text = arg if isinstance(arg, str) else json.dumps(arg, indent=2)
        if kind == "print_plan":
            out(f"```yaml\n{text}\n```")
        else:
            with open(os.environ["ORCH_PLAN_FILE"], "w") as fh:
                fh.write(text)
    elif kind == "progress_until":
        count = 0
        while not os.path.exists(arg[0]):
            out(f"[PROGRESS:{tid}] {count % 100}% - step {count}")
            count += 1
            time.sleep(float(arg[1]))
    return None


def shut_down(path: str, grace: float) -> None:
    time.sleep(grace)
    with open(path, "w") as fh:
        fh.write("shut down cleanly\n")
    os._exit(143)


if __name__ == "__main__":
    sys.exit(main())
