#!/usr/bin/env python3
"""A scripted OpenAI chat-completions API on 127.0.0.1, for running the real aider.

Usage: scripted_openai.py PORT COMMAND [OUTSIDE] [--tools] [--ask]

Point aider at it with `--model openai/scripted --openai-api-base http://127.0.0.1:PORT/v1`
(any OPENAI_API_KEY). In the orchlib conversation (a message carries the protocol's
`[DONE:<terminal id>]`) the model answers once, in aider's `diff` edit format: a new file
`mine.txt` with "hi", a ```bash block with COMMAND (aider runs it with --yes-always), and
`[DONE:<id>] wrote mine.txt` on a line of its own; with OUTSIDE, a second new file there
(a path outside the project, for a sandbox to refuse). With --tools (opencode, which
calls tools): a `bash` tool call running COMMAND, then `[DONE:<id>] <its output>`.
With --ask, while no "blue" is in the conversation, the model asks `[QUESTION:<id>] Which
colour should it be?` instead. Anything else gets "ok". Streaming (SSE chunks) and plain
replies.
"""

from __future__ import annotations

import json
import re
import secrets
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

COMMAND = sys.argv[2] if len(sys.argv) > 2 else "echo hi"
OUTSIDE = next((a for a in sys.argv[3:] if not a.startswith("--")), "")
TOOLS = "--tools" in sys.argv[3:]
ASK = "--ask" in sys.argv[3:]
DONE = re.compile(r"\[DONE:(term-[A-Za-z0-9_.-]+)\]")


def reply(messages: list[dict[str, Any]]) -> str | dict[str, Any]:
    """The model's next message: its text, or a tool call."""
    text = "\n".join(str(m.get("content")) for m in messages)
    ids = DONE.findall(text)
    if not ids:
        return "ok"
    tid = ids[-1]
    if ASK and "blue" not in text:
        return f"[QUESTION:{tid}] Which colour should it be?"
    if TOOLS:
        start = next(i for i, m in enumerate(messages) if f"[DONE:{tid}]" in str(m.get("content")))
        results = [str(m.get("content")) for m in messages[start:] if m.get("role") == "tool"]
        if results:
            return f"[DONE:{tid}] " + " | ".join(results[-1].splitlines())[:300]
        arguments = json.dumps({"command": COMMAND, "description": "do the task"})
        return {"id": f"call_{secrets.token_hex(6)}", "type": "function",
                "function": {"name": "bash", "arguments": arguments}}  # fmt: skip
    new = "```\n<<<<<<< SEARCH\n=======\nhi\n>>>>>>> REPLACE\n```\n\n"
    return (
        f"[PROGRESS:{tid}] 50% - writing mine.txt\n\n"
        f"mine.txt\n{new}"
        + (f"{OUTSIDE}\n{new}" if OUTSIDE else "")
        + f"```bash\n{COMMAND}\n```\n\n"
        f"[DONE:{tid}] wrote mine.txt\n"
    )


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        """Quiet."""

    def do_GET(self) -> None:
        self._json({"object": "list", "data": [{"id": "scripted", "object": "model"}]})

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        said = reply(body.get("messages", []))
        content, call = (said, None) if isinstance(said, str) else ("", said)
        base = {"id": f"chatcmpl-{secrets.token_hex(6)}", "created": int(time.time()),
                "model": body.get("model", "scripted")}  # fmt: skip
        usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if call is not None:
            message["tool_calls"] = [call]
        finish = "stop" if call is None else "tool_calls"
        if not body.get("stream"):
            choice = {"index": 0, "message": message, "finish_reason": finish}
            self._json({**base, "object": "chat.completion", "choices": [choice], "usage": usage})
            return
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.end_headers()
        if call is not None:
            message["tool_calls"] = [{"index": 0, **call}]
        for delta, ended in ((message, None), ({}, finish)):
            choice = {"index": 0, "delta": delta, "finish_reason": ended}
            chunk = {**base, "object": "chat.completion.chunk", "choices": [choice]}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
        final = {**base, "object": "chat.completion.chunk", "choices": [], "usage": usage}
        self.wfile.write(f"data: {json.dumps(final)}\n\ndata: [DONE]\n\n".encode())
        self.wfile.flush()

    def _json(self, value: object) -> None:
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps(value).encode())


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
