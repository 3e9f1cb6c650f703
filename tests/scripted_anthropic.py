#!/usr/bin/env python3
"""A scripted Anthropic Messages API on 127.0.0.1, for running the real Claude Code.

Usage: scripted_anthropic.py PORT SCRIPT [--ask]

Point Claude Code at it with ANTHROPIC_BASE_URL=http://127.0.0.1:PORT (any API key). In
the orchlib conversation (its messages carry the protocol's `[DONE:<terminal id>]`, the
last one naming the current attempt) the model:
  1. with --ask, and no "blue" anywhere in the conversation yet: asks
     `[QUESTION:<id>] Which colour should it be?`;
  2. else calls the Bash tool with SCRIPT (a new tool id each time: a resumed session
     holds the earlier calls);
  3. once that call's result is back: answers `[DONE:<id>] <the tool's output>`.
A reviewer's conversation (its prompt names `[APPROVE:<review id>]`, DESIGN §16) gets
`[APPROVE:<id>] scripted review: <the first changed file the prompt shows>`.
Any other request (a title, a quota check) gets "ok". Streaming (SSE) and plain replies.
"""

from __future__ import annotations

import json
import re
import secrets
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SCRIPT = sys.argv[2] if len(sys.argv) > 2 else "echo hi"
ASK = "--ask" in sys.argv[3:]
DONE = re.compile(r"\[DONE:(term-[A-Za-z0-9_.-]+)\]")
REVIEW = re.compile(r"\[APPROVE:(review-[A-Za-z0-9_.-]+)\]")
CHANGED = re.compile(r"^(?:new file(?: \(untracked\))?|changed file): (\S+)|^\+\+\+ b/(\S+)", re.M)


def texts(messages: list[dict[str, Any]]) -> str:
    """Every text and tool result of `messages`, one after another."""
    out = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            out.append(content)
            continue
        for block in content or []:
            if block.get("type") == "text":
                out.append(block.get("text", ""))
            elif block.get("type") == "tool_result":
                result = block.get("content")
                out.append(result if isinstance(result, str) else json.dumps(result))
    return "\n".join(out)


def answer(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The content blocks of the model's next message."""
    reviews = REVIEW.findall(texts(messages[:1]))
    if reviews:
        found = CHANGED.search(texts(messages[:1]))
        shown = (found[1] or found[2]) if found else "nothing"
        return [{"type": "text", "text": f"[APPROVE:{reviews[-1]}] scripted review: {shown}"}]
    ids = DONE.findall(texts(messages))
    if not ids:
        return [{"type": "text", "text": "ok"}]
    tid = ids[-1]
    start = next(i for i, m in enumerate(messages) if f"[DONE:{tid}]" in texts([m]))
    results = [
        block
        for m in messages[start:]
        if isinstance(m.get("content"), list)
        for block in m["content"]
        if block.get("type") == "tool_result"
    ]
    if ASK and "blue" not in texts(messages):
        return [{"type": "text", "text": f"[QUESTION:{tid}] Which colour should it be?"}]
    if not results:
        call = {"command": SCRIPT, "description": "do the task"}
        return [{"type": "tool_use", "id": f"toolu_{secrets.token_hex(8)}", "name": "Bash",
                 "input": call}]  # fmt: skip
    said = texts([{"content": results[-1:]}]).replace("\n", " | ")
    return [{"type": "text", "text": f"[DONE:{tid}] {said[:300]}"}]


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        """Quiet."""

    def do_GET(self) -> None:
        self._json({})

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        if not self.path.startswith("/v1/messages") or "count_tokens" in self.path:
            self._json({"input_tokens": 10})
            return
        blocks = answer(body.get("messages", []))
        stop = "tool_use" if blocks[0]["type"] == "tool_use" else "end_turn"
        usage = {"input_tokens": 10, "output_tokens": 1}
        message = {"id": f"msg_{secrets.token_hex(8)}", "type": "message", "role": "assistant",
                   "model": body.get("model", "scripted"), "content": [], "stop_reason": None,
                   "stop_sequence": None, "usage": usage}  # fmt: skip
        if body.get("stream"):
            self._stream(message, blocks, stop)
        else:
            self._json({**message, "content": blocks, "stop_reason": stop})

    def _json(self, value: object) -> None:
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps(value).encode())

    def _stream(self, message: dict[str, Any], blocks: list[dict[str, Any]], stop: str) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.end_headers()

        def event(kind: str, **data: Any) -> None:
            payload = json.dumps({"type": kind, **data})
            self.wfile.write(f"event: {kind}\ndata: {payload}\n\n".encode())

        event("message_start", message=message)
        for i, block in enumerate(blocks):
            if block["type"] == "text":
                event("content_block_start", index=i, content_block={"type": "text", "text": ""})
                delta = {"type": "text_delta", "text": block["text"]}
            else:
                event("content_block_start", index=i, content_block={**block, "input": {}})
                delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
            event("content_block_delta", index=i, delta=delta)
            event("content_block_stop", index=i)
        event("message_delta", delta={"stop_reason": stop, "stop_sequence": None},
              usage={"output_tokens": 5})  # fmt: skip
        event("message_stop")
        self.wfile.flush()


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
