"""A run's threads share one CPU; the processes it starts get every CPU the run had.

orchlib's threads take turns: each holds Python's GIL for nearly all the time it runs.
Spread over CPUs, every hand-off between them (a task to its slot, an attempt's end to its
slot, the result back to the scheduler, a change to the state writer) wakes a thread on
another, idle CPU: an inter-processor interrupt, which on a virtual machine is a VM exit.
Kept on the CPU the run started on, those wakes are local, and the other CPUs are left to
the agents. 300 short tasks on a 2-CPU VM: -102 ms wall, -127 ms CPU (benchmarks/RESULTS.md).

Every process a run starts (agents, shell tasks, verify, git, notification commands) is
forked in `process.spawn`, and the sandbox's probe in `sandbox.probe`, inside
`for_children`: the forking thread takes the run's CPUs back for that moment, so the child
inherits them, not the pin.

Linux only (`os.sched_setaffinity`); elsewhere, with one CPU, or when the kernel refuses,
nothing changes.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import threading
from collections.abc import Iterator
from typing import Any

_CPU_SETSIZE = 1024  # glibc's cpu_set_t, what sched_setaffinity(2) is given here
_lock = threading.Lock()
_run_cpus: set[int] | None = None  # while a run is pinned: the CPUs its children get


@contextlib.contextmanager
def one_cpu() -> Iterator[None]:
    """Keep the calling thread, and every thread it starts meanwhile, on the CPU it runs on."""
    global _run_cpus
    allowed = _allowed()
    with _lock:
        pin = allowed is not None and len(allowed) > 1 and _run_cpus is None
        if pin and allowed is not None and _set({_current_cpu(allowed)}):
            _run_cpus = allowed
        else:
            pin = False
    try:
        yield
    finally:
        if pin and allowed is not None:
            with _lock:
                _run_cpus = None
            _set(allowed)


@contextlib.contextmanager
def for_children() -> Iterator[None]:
    """Around a fork: the calling thread, and so its child, on every CPU of the run."""
    cpus = _run_cpus
    own = _allowed() if cpus is not None else None
    widened = own is not None and cpus is not None and _set(cpus)
    try:
        yield
    finally:
        if widened and own is not None:
            _set(own)


def _allowed() -> set[int] | None:
    """The calling thread's CPUs; None where they cannot be set."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    try:
        return os.sched_getaffinity(0)
    except OSError:
        return None


def _set(cpus: set[int]) -> bool:
    """Put the calling thread (pid 0 is the thread on Linux) on `cpus`.

    Through libc, which lets go of the GIL for the call: `os.sched_setaffinity` keeps it,
    and when the thread must move to another CPU the call waits for that CPU, stalling
    every thread of the run meanwhile (300 short tasks: -17 ms, benchmarks/RESULTS.md).
    """
    setaffinity, mask = _libc_setaffinity(), _mask(frozenset(cpus))
    if setaffinity is not None and mask is not None:
        return bool(setaffinity(0, ctypes.sizeof(mask), mask) == 0)
    try:
        os.sched_setaffinity(0, cpus)
    except OSError:  # a CPU gone offline, a cpuset that changed: leave it as it is
        return False
    return True


@functools.cache
def _libc_setaffinity() -> Any:
    """libc's sched_setaffinity(2) wrapper; None where there is none."""
    try:
        setaffinity = ctypes.CDLL(None, use_errno=True).sched_setaffinity
    except (OSError, AttributeError):
        return None
    setaffinity.argtypes = (ctypes.c_int, ctypes.c_size_t, ctypes.c_void_p)
    setaffinity.restype = ctypes.c_int
    return setaffinity


@functools.cache
def _mask(cpus: frozenset[int]) -> ctypes.Array[ctypes.c_ulong] | None:
    """`cpus` as a cpu_set_t (glibc's 1,024 bits); None for a CPU past it or an empty set."""
    bits = 8 * ctypes.sizeof(ctypes.c_ulong)
    if not cpus or min(cpus) < 0 or max(cpus) >= _CPU_SETSIZE:
        return None
    mask = (ctypes.c_ulong * (_CPU_SETSIZE // bits))()
    for cpu in cpus:
        mask[cpu // bits] |= 1 << (cpu % bits)
    return mask


def _current_cpu(allowed: set[int]) -> int:
    """The CPU this thread last ran on (/proc's `processor`), else the lowest allowed.

    Runs started together (two checkouts, a test suite) start on different CPUs, so they
    do not all crowd the first one.
    """
    with contextlib.suppress(OSError, ValueError, IndexError):
        with open("/proc/thread-self/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        cpu = int(fields[36])  # field 39 of stat(5); the split starts at field 3
        if cpu in allowed:
            return cpu
    return min(allowed)
