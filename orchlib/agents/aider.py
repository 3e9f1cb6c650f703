"""aider: its command line, and its output reader: plain text minus the code the model writes.

aider prints the model's reply as is, edit blocks included: a SEARCH/REPLACE block (inside a
fence or bare), a whole-file edit (a file name, then the file in a fence), a unified diff
in a ```diff fence. A `[DONE:id]` inside any of those is file content, not a report (a
model writing a test fixture, or the orchestration docs, would otherwise end its own
attempt), so lines inside a fence or an edit block are not scanned. The marker scanner
itself stays generic; this layer only decides which lines reach it.
"""

from __future__ import annotations

import re

from orchlib.agents.base import Profile
from orchlib.agents.limits import better, messages, recognise
from orchlib.agents.streams import PlainText

_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
_SEARCH = re.compile(r"^\s*<{5,9} SEARCH\b")
_REPLACE = re.compile(r"^\s*>{5,9} REPLACE\b")
# aider's own lines for a litellm RateLimitError (aider/exceptions.py): never the model's
_RATE_LIMITED = re.compile(r"RateLimitError|has rate limited you")
LIMITS = messages(r"has rate limited you")  # and litellm's relay of the provider's error


class AiderText(PlainText):
    """`aider --no-pretty`: every line outside fenced code and edit blocks is text."""

    def __init__(self) -> None:
        super().__init__()
        self._fence = ""  # the open fence (``` or longer, or ~~~), "" outside code
        self._in_edit = False

    def texts(self, line: str) -> list[str]:
        """The line, unless it belongs to code the model wrote."""
        if self._code(line):
            return []
        if _RATE_LIMITED.search(line):
            self.limit = better(self.limit, recognise(line, limits=LIMITS))
        return [line]

    def _code(self, line: str) -> bool:
        """Whether `line` is part of a fence or an edit block (updating which one is open)."""
        # An edit block ends only at its REPLACE line: its text may hold fences (a Markdown
        # file being edited), so it is checked before them.
        if self._in_edit:
            self._in_edit = not _REPLACE.match(line)
            return True
        if _SEARCH.match(line):
            self._in_edit = True
            return True
        fence = _FENCE.match(line)
        if self._fence:
            closes = fence and fence[1][0] == self._fence[0] and len(fence[1]) >= len(self._fence)
            if closes and not line.strip().lstrip(self._fence[0]):
                self._fence = ""
            return True
        if fence:
            self._fence = fence[1]
            return True
        return False


# aider reads its chat from stdin line by line, so the prompt goes by file or argument.
PROFILE = Profile(
    name="aider",
    program="aider",
    base=("--no-pretty", "--no-fancy-input", "--no-check-update", "--no-analytics"),
    permission=("--yes-always",),
    permission_flags=("--yes-always",),
    prompt={"file": ("--message-file", "{prompt_file}"), "arg": ("--message={prompt}",)},
    adapter=AiderText,
    # aider reaches each provider through litellm, which reads that provider's key;
    # AIDER_* are its own option variables (--openai-api-key, --api-key).
    login=(
        "OPENAI_API_KEY",
        "ANTHROPIC_API_KEY",
        "GEMINI_API_KEY",
        "OPENROUTER_API_KEY",
        "DEEPSEEK_API_KEY",
        "GROQ_API_KEY",
        "AIDER_OPENAI_API_KEY",
        "AIDER_ANTHROPIC_API_KEY",
        "AIDER_API_KEY",
    ),
    state=("~/.aider/",),  # its history and tags cache are in the project
)
