"""Until a run installs its own handlers, SIGINT and SIGTERM end orchlib quietly.

Python's default turns Ctrl-C into a KeyboardInterrupt traceback (or, once a handler was
restored to the default, death by signal). orchlib installs this as early as its code
runs (when doit loads its commands, or at the top of `python -m orchlib`), and a run's
own handlers (session.py) hand back to it: a Ctrl-C while plans load or after the run
ends exits 130 (SIGTERM 143) with no traceback, like one during the run.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys
import threading
from types import FrameType

SIGNAL_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}


def _exit(signum: int, frame: FrameType | None) -> None:
    # Not SystemExit: raised at an arbitrary bytecode it can surface as another error
    # (inside a class body, `RuntimeError: Error calling __set_name__`). Outside a run
    # nothing needs unwinding: no agent runs, every runtime file is written atomically.
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(SIGNAL_EXIT[signal.Signals(signum)])


def install() -> None:
    """Quiet exits for SIGINT/SIGTERM, where Python's defaults are still in place."""
    if threading.current_thread() is not threading.main_thread():
        return
    mine = False
    for sig in SIGNAL_EXIT:
        if signal.getsignal(sig) in (signal.SIG_DFL, signal.default_int_handler):
            signal.signal(sig, _exit)
            mine = True
    if mine:
        atexit.register(_ignore_while_exiting)


def _ignore_while_exiting() -> None:
    """While the interpreter shuts down: Python then resets a Python-level handler to the
    default (death by signal), but leaves an ignored signal ignored; the exit code is
    decided by then."""
    for sig in SIGNAL_EXIT:
        if signal.getsignal(sig) is _exit:
            signal.signal(sig, signal.SIG_IGN)
