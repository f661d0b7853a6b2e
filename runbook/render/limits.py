"""Bounds on what a template may cost: time, memory, and the size of what it makes.

Template code is the guide author's, and sites lint pull requests from strangers, so a
template must not run code (Jinja's sandbox), nor hang or exhaust the machine
(``{{ range(10**9)|list }}``, ``{{ 'a' * 10**10 }}``, loops without end). The sandbox refuses
what names Python internals; the operators that build huge values are checked before they
run; and the whole render runs under a time limit and a memory ceiling, turned into a clear
error at the page.
"""

from __future__ import annotations

import contextlib
import math
import resource
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

MAX_SECONDS = 8.0
"""How long rendering one page may take."""
MAX_VALUE = 16 * 1024 * 1024
"""The largest string or list an operator may build (items or characters)."""
MAX_MEMORY = 768 * 1024 * 1024
"""How much more memory rendering may take than the process had before it."""
_MAX_POWER_BITS = 1 << 16


class TooCostly(BaseException):
    """Rendering went past a bound (not an Exception: no handler of template errors may
    take it for one and go on rendering)."""


class BoundedEnvironment(SandboxedEnvironment):
    """Jinja's sandbox, with the operators that build values checked for size first."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            _check_repeat(left, right)
            _check_repeat(right, left)
        elif operator == "**":
            _check_power(left, right)
        elif operator == "%" and isinstance(left, str):
            args = right if isinstance(right, tuple) else (right,)
            if any(isinstance(a, int) and abs(a) > MAX_VALUE for a in args):
                raise SecurityError("a format width or precision that large is refused")
        return super().call_binop(context, operator, left, right)


def _check_repeat(seq: Any, times: Any) -> None:
    sized = isinstance(seq, str | bytes | list | tuple) and isinstance(times, int)
    if sized and len(seq) * times > MAX_VALUE:
        raise SecurityError(f"repeating a value {times} times makes more than {MAX_VALUE} items")


def _check_power(base: Any, exponent: Any) -> None:
    ints = isinstance(base, int) and isinstance(exponent, int)
    if (
        ints
        and abs(base) > 1
        and exponent > 0
        and exponent * math.log2(abs(base)) > _MAX_POWER_BITS
    ):
        raise SecurityError("a power that large is refused")


@contextlib.contextmanager
def bounded() -> Iterator[None]:
    """Run the body within the time limit and the memory ceiling; raise TooCostly past them.

    The time limit needs the main thread (a timer signal); elsewhere (a server rebuilding
    pages in a thread) only the memory ceiling and the value checks apply.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    ceiling = _usage() + MAX_MEMORY
    if hard != resource.RLIM_INFINITY:
        ceiling = min(ceiling, hard)
    timed = threading.current_thread() is threading.main_thread()
    previous: Any = None
    if timed:
        previous = signal.signal(signal.SIGALRM, _too_long)
        signal.setitimer(signal.ITIMER_REAL, MAX_SECONDS)
    limited = soft == resource.RLIM_INFINITY or soft > ceiling
    if limited:
        resource.setrlimit(resource.RLIMIT_AS, (ceiling, hard))
    try:
        yield
    except MemoryError:
        raise TooCostly(f"rendering needs more than {MAX_MEMORY // (1024 * 1024)} MiB") from None
    finally:
        if limited:
            resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        if timed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)


def _too_long(signum: int, frame: FrameType | None) -> None:
    raise TooCostly(f"rendering took longer than {MAX_SECONDS:g} s")


def _usage() -> int:
    """Return the process's virtual memory size in bytes."""
    with open("/proc/self/statm", "rb") as handle:
        pages = int(handle.read().split()[0])
    return pages * resource.getpagesize()
