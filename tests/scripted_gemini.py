#!/usr/bin/env python3
"""A scripted Gemini API on 127.0.0.1, for running the real Gemini CLI.

Usage: scripted_gemini.py PORT COMMAND [--ask]

Point Gemini CLI at it with GOOGLE_GEMINI_BASE_URL=http://127.0.0.1:PORT (any
GEMINI_API_KEY). In the orchlib conversation (a part carries the protocol's `[DONE:<id>]`,
the last one naming the current attempt) the model calls `run_shell_command` with COMMAND,
then, once its result is back, answers `[DONE:<id>] <its output>`; with --ask, while no
"blue" is in the conversation, it asks `[QUESTION:<id>] Which colour should it be?`
instead. A request for JSON (the
CLI's next-speaker check) gets `{"next_speaker": "user"}`; anything else "ok".
`streamGenerateContent?alt=sse`, `generateContent` and `countTokens`.
"""

from __future__ import annotations

import json
import re
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

COMMAND = sys.argv[2] if len(sys.argv) > 2 else "echo hi"
ASK = "--ask" in sys.argv[3:]
DONE = re.compile(r"\[DONE:(term-[A-Za-z0-9_.-]+)\]")


def parts_text(content: dict[str, Any]) -> str:
    return "\n".join(str(part.get("text", "")) for part in content.get("parts", []))


def answer(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The parts of the model's next content."""
    config = body.get("generationConfig") or {}
    if config.get("responseMimeType") == "application/json":
        return [{"text": json.dumps({"reasoning": "done", "next_speaker": "user"})}]
    contents = body.get("contents", [])
    ids = DONE.findall("\n".join(parts_text(c) for c in contents))
    if not ids:
        return [{"text": "ok"}]
    tid = ids[-1]
    if ASK and "blue" not in "\n".join(parts_text(c) for c in contents):
        return [{"text": f"[QUESTION:{tid}] Which colour should it be?"}]
    start = next(i for i, c in enumerate(contents) if f"[DONE:{tid}]" in parts_text(c))
    results = [part["functionResponse"] for c in contents[start:]
               for part in c.get("parts", []) if "functionResponse" in part]  # fmt: skip
    if not results:
        call = {"name": "run_shell_command",
                "args": {"command": COMMAND, "description": "do the task"}}  # fmt: skip
        return [{"functionCall": call}]
    said = json.dumps(results[-1].get("response", {}))
    return [{"text": f"[DONE:{tid}] {' | '.join(said.splitlines())[:300]}"}]


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        """Quiet."""

    def do_GET(self) -> None:
        self._send("application/json", json.dumps({"models": []}))

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        if ":countTokens" in self.path:
            self._send("application/json", json.dumps({"totalTokens": 10}))
            return
        content = {"role": "model", "parts": answer(body)}
        usage = {"promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 15}
        reply = {"candidates": [{"content": content, "finishReason": "STOP", "index": 0}],
                 "usageMetadata": usage, "modelVersion": "scripted"}  # fmt: skip
        if ":streamGenerateContent" in self.path:
            self._send("text/event-stream", f"data: {json.dumps(reply)}\r\n\r\n")
        else:
            self._send("application/json", json.dumps(reply))

    def _send(self, kind: str, text: str) -> None:
        self.send_response(200)
        self.send_header("content-type", kind)
        self.end_headers()
        self.wfile.write(text.encode())


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
