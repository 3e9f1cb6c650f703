#!/usr/bin/env python3
"""A scripted OpenAI Responses API on 127.0.0.1, for running the real Codex CLI.

Usage: scripted_responses.py PORT COMMAND [LOG] [--ask]

Point Codex at it with a model provider whose `base_url` is http://127.0.0.1:PORT/v1 and
`wire_api = "responses"`. In the orchlib conversation (an input item carries the
protocol's `[DONE:<id>]`, the last one naming the current attempt) the model calls the
shell tool the request offers (`shell_command` with a string, `shell` / `exec_command` with
an argv) to run COMMAND, then, once its output is back, answers `[DONE:<id>] <output>`.
With --ask, while no "blue" is in the conversation, it asks `[QUESTION:<id>] Which colour
should it be?` instead. A reviewer's conversation (its protocol's `[APPROVE:<id>]`, DESIGN
§16) gets `[APPROVE:<id>] scripted review` at once. Anything else gets "ok". Streamed as the
Responses API's
server-sent events. LOG, when given, gets one line per request with the offered tools.
"""

from __future__ import annotations

import json
import re
import secrets
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

COMMAND = sys.argv[2] if len(sys.argv) > 2 else "echo hi"
LOG = next((a for a in sys.argv[3:] if not a.startswith("--")), "")
ASK = "--ask" in sys.argv[3:]
DONE = re.compile(r"\[DONE:(term-[A-Za-z0-9_.-]+)\]")
APPROVE = re.compile(r"\[APPROVE:(review-[A-Za-z0-9_.-]+)\]")
OUTPUTS = ("function_call_output", "custom_tool_call_output", "local_shell_call_output")


def item_text(item: dict[str, Any]) -> str:
    content = item.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return str(item.get("output", ""))


def shell_call(tools: list[dict[str, Any]]) -> dict[str, Any]:
    """A call of the shell tool among `tools`, running COMMAND."""
    names = [str(t.get("name")) for t in tools]
    call_id = f"call_{secrets.token_hex(6)}"
    if "shell_command" in names:
        args: dict[str, Any] = {"command": COMMAND}
        name = "shell_command"
    elif "exec_command" in names:
        args, name = {"cmd": COMMAND}, "exec_command"
    else:
        args, name = {"command": ["bash", "-lc", COMMAND]}, "shell"
    return {"type": "function_call", "id": f"fc_{secrets.token_hex(6)}", "call_id": call_id,
            "name": name, "arguments": json.dumps(args), "status": "completed"}  # fmt: skip


def answer(body: dict[str, Any]) -> dict[str, Any]:
    """The model's next output item."""
    items = [i for i in body.get("input", []) if isinstance(i, dict)]
    ids = DONE.findall("\n".join(item_text(i) for i in items))
    text = "ok"
    reviews = APPROVE.findall("\n".join(item_text(i) for i in items))
    if reviews:
        text = f"[APPROVE:{reviews[-1]}] scripted review"
    elif ids and ASK and "blue" not in "\n".join(item_text(i) for i in items):
        text = f"[QUESTION:{ids[-1]}] Which colour should it be?"
    elif ids:
        tid = ids[-1]
        start = next(n for n, i in enumerate(items) if f"[DONE:{tid}]" in item_text(i))
        outputs = [item_text(i) for i in items[start:] if i.get("type") in OUTPUTS]
        if not outputs:
            return shell_call(body.get("tools", []))
        text = f"[DONE:{tid}] " + " | ".join(outputs[-1].splitlines())[:300]
    return {"type": "message", "id": f"msg_{secrets.token_hex(6)}", "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": text, "annotations": []}]}  # fmt: skip


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        """Quiet."""

    def do_GET(self) -> None:
        self._send("application/json", json.dumps({"object": "list", "data": []}))

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        if LOG:
            with open(LOG, "a") as fh:
                tools = [t.get("name") or t.get("type") for t in body.get("tools", [])]
                fh.write(f"{self.path} tools={tools}\n")
        item = answer(body)
        rid = f"resp_{secrets.token_hex(6)}"
        usage = {"input_tokens": 10, "input_tokens_details": {"cached_tokens": 0},
                 "output_tokens": 5, "output_tokens_details": {"reasoning_tokens": 0},
                 "total_tokens": 15}  # fmt: skip
        events = [
            ("response.created", {"response": {"id": rid, "status": "in_progress"}}),
            ("response.output_item.added", {"output_index": 0, "item": item}),
            ("response.output_item.done", {"output_index": 0, "item": item}),
            ("response.completed", {"response": {"id": rid, "status": "completed",
                                                 "output": [item], "usage": usage}}),
        ]  # fmt: skip
        text = "".join(
            f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n"
            for kind, data in events
        )
        self._send("text/event-stream", text)

    def _send(self, kind: str, text: str) -> None:
        self.send_response(200)
        self.send_header("content-type", kind)
        self.end_headers()
        self.wfile.write(text.encode())


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
