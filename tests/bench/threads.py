"""What lets several units' hooks run at once in one process (the bench's parallel mode).

ops.testing was written for one hook at a time: Scenario puts the hook's JUJU_* variables in
os.environ for the length of the run, and ops adds a juju-log handler to the root logger (and
Scenario removes every such handler when a run ends). Two hooks in two threads would read each
other's variables and log into each other's unit. So, once per process:
- os.environ becomes a mapping that a hook thread sees as its own copy (`hook_environment`);
  every other thread sees and changes the real environment, as before;
- a juju-log handler takes only the records of the thread that made it, and a run's clean-up
  removes only its own thread's handler.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator, MutableMapping
from typing import Any

import ops.log
from scenario import _ops_main_mock


class ThreadEnviron(MutableMapping[str, str]):
    """os.environ, with a private copy for each thread inside `isolated()`."""

    def __init__(self, base: MutableMapping[str, str]):
        self.base = base
        self._local = threading.local()

    def _env(self) -> MutableMapping[str, str]:
        own = getattr(self._local, "env", None)
        return own if own is not None else self.base

    @contextlib.contextmanager
    def isolated(self) -> Iterator[None]:
        self._local.env = dict(self.base)
        try:
            yield
        finally:
            self._local.env = None

    def __getitem__(self, key: str) -> str:
        return self._env()[key]

    def __setitem__(self, key: str, value: str) -> None:
        self._env()[key] = value

    def __delitem__(self, key: str) -> None:
        del self._env()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._env()))

    def __len__(self) -> int:
        return len(self._env())

    def copy(self) -> dict[str, str]:
        return dict(self._env())


class _ThisThreadsHandler(type):
    """`isinstance(h, JujuLogHandler)` as Scenario's clean-up asks it: only this thread's."""

    def __instancecheck__(cls, obj: Any) -> bool:
        return (
            isinstance(obj, _ORIGINAL_HANDLER)
            and getattr(obj, "bench_thread", None) == threading.get_ident()
        )


class _HandlerOfThisThread(metaclass=_ThisThreadsHandler):
    pass


_ORIGINAL_HANDLER = ops.log.JujuLogHandler
_original_init = _ORIGINAL_HANDLER.__init__
_installed = threading.Lock()
_done: list[bool] = []


def _thread_bound_init(self: Any, *args: Any, **kwargs: Any) -> None:
    _original_init(self, *args, **kwargs)
    self.bench_thread = threading.get_ident()
    self.addFilter(lambda record: record.thread == self.bench_thread)


def install() -> None:
    """Make hook runs thread-safe; idempotent, and harmless to a serial bench."""
    with _installed:
        if _done:
            return
        if not isinstance(os.environ, ThreadEnviron):
            # the same variables, seen through a mapping that can give a thread its own copy
            os.environ = ThreadEnviron(os.environ)  # type: ignore[assignment]  # noqa: B003
        _ORIGINAL_HANDLER.__init__ = _thread_bound_init  # type: ignore[method-assign]
        _ops_main_mock.JujuLogHandler = _HandlerOfThisThread  # type: ignore[misc,assignment]
        _done.append(True)


@contextlib.contextmanager
def hook_environment() -> Iterator[None]:
    """Around one hook run in a worker thread: its own os.environ."""
    environ = os.environ
    if isinstance(environ, ThreadEnviron):
        with environ.isolated():
            yield
    else:
        yield
