"""Send everything the local stack's process writes to a log file, so a terminal shows only what the caller prints.

The functions run in this process (see :mod:`memberflow_local.runtime`), so their output is the process's output:

- Powertools Logger writes JSON through its own ``StreamHandler``, bound to ``sys.stdout`` when the Logger is
  created (at a container's first load, or earlier in this process); Powertools Metrics ``print()`` EMF lines;
- boto3, moto, werkzeug, the sandbox and the local stack log through :mod:`logging`;
- :mod:`warnings` (e.g. Powertools' user warnings) and uncaught exceptions in threads go to ``sys.stderr``.

``LogCapture`` covers each of these while it is active:

1. ``sys.stdout`` and ``sys.stderr`` are replaced by streams that write to the file (so handlers created meanwhile,
   ``print`` and thread tracebacks land there);
2. every existing ``StreamHandler`` that writes to the console, and every Powertools handler, is pointed at the file;
3. a handler on the root logger writes the records of every other logger to the file (records a redirected
   handler already wrote are not written twice);
4. warnings that the warning filters let through are written to the file (``warnings.showwarning``).

On exit everything is put back; a handler created during the capture writes to the stream it would have written to
(the stream that ``sys.stdout``/``sys.stderr`` were before). The capture works at the Python level: native code
writing straight to file descriptors 1 and 2 would still reach the terminal (nothing in the local stack does).
"""

from __future__ import annotations

import io
import logging
import sys
import threading
import warnings
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO, cast

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(threadName)s]: %(message)s"


class _LogFileStream(io.TextIOBase):
    """Stands in for sys.stdout or sys.stderr: writes go to the log file, or to ``fallback`` once released."""

    def __init__(self, file: TextIO, lock: threading.Lock, fallback: TextIO, name: str) -> None:
        super().__init__()
        self._file: TextIO | None = file
        self._lock = lock
        self.fallback = fallback
        self.name = name

    def _target(self) -> TextIO:
        return self._file if self._file is not None else self.fallback

    def write(self, text: str) -> int:
        with self._lock:
            self._target().write(text)
        return len(text)

    def flush(self) -> None:
        with self._lock:
            self._target().flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self._target().fileno()

    @property
    def buffer(self) -> Any:
        return self._target().buffer

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def release(self) -> None:
        with self._lock:
            self._file = None


class _RootFileHandler(logging.StreamHandler):
    """The root logger's handler into the log file.

    It applies its own rule instead of filters: Powertools adds a filter to every root handler that drops the
    records of any logger whose name *contains* its service name ("memberflow" also matches "memberflow_local"),
    to avoid writing a record twice. Here a record is dropped only if a handler that writes to the log file has
    already written it on its way up to the root.
    """

    def __init__(self, stream: _LogFileStream, capture: LogCapture) -> None:
        super().__init__(stream)
        self._capture = capture
        self.setFormatter(logging.Formatter(LOG_FORMAT))

    def filter(self, record: logging.LogRecord) -> bool:
        return not self._capture.written_before_root(record)


class LogCapture:
    """``with LogCapture(path) as log:`` everything written during the block goes to ``path`` (see module doc)."""

    def __init__(self, path: Path, *, level: int = logging.INFO) -> None:
        self.path = Path(path)
        self.level = level
        self._lock = threading.Lock()
        self._file: TextIO | None = None
        self._stdout: _LogFileStream | None = None
        self._stderr: _LogFileStream | None = None
        self._root_handler: _RootFileHandler | None = None
        self._saved_streams: tuple[Any, Any] = (None, None)
        self._saved_root_level = logging.WARNING
        self._redirected: list[tuple[logging.StreamHandler, Any]] = []
        self._warnings: warnings.catch_warnings | None = None

    @property
    def stream(self) -> TextIO:
        """A text stream into the log file (valid while the capture is active)."""
        if self._stdout is None:
            raise RuntimeError("the log capture is not active")
        return cast(TextIO, self._stdout)

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> LogCapture:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if error is not None and self._file is not None:
            logging.getLogger("memberflow_local.capture").error("stopped by an error", exc_info=error)
        self.stop()

    def start(self) -> None:
        if self._file is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - closed in stop()
        out, err = sys.stdout, sys.stderr
        self._saved_streams = (out, err)
        self._stdout = _LogFileStream(self._file, self._lock, out, "<memberflow log: stdout>")
        self._stderr = _LogFileStream(self._file, self._lock, err, "<memberflow log: stderr>")
        consoles = [s for s in (out, err, sys.__stdout__, sys.__stderr__) if s is not None]
        # 1. anything that looks up sys.stdout / sys.stderr from now on
        sys.stdout, sys.stderr = self._stdout, self._stderr
        # 2. existing handlers that write to the console, and Powertools' own handlers (a handler may be shared
        #    by several loggers: Powertools copies its handler to the layer's loggers)
        for logger in _all_loggers():
            for handler in logger.handlers:
                if not isinstance(handler, logging.StreamHandler) or isinstance(handler, logging.FileHandler):
                    continue
                stream = handler.stream
                if stream is self._stdout or stream is self._stderr:
                    continue
                if _is_console(stream, consoles) or _is_powertools_handler(logger, handler):
                    target = self._stderr if (stream is err or stream is sys.__stderr__) else self._stdout
                    self._redirected.append((handler, stream))
                    handler.setStream(target)
        # 3. every other logger's records
        root = logging.getLogger()
        self._root_handler = _RootFileHandler(self._stderr, self)
        root.addHandler(self._root_handler)
        self._saved_root_level = root.level
        if root.level == logging.NOTSET or root.level > self.level:
            root.setLevel(self.level)
        # 4. warnings
        self._warnings = warnings.catch_warnings()
        self._warnings.__enter__()
        warnings.showwarning = self._show_warning

    def stop(self) -> None:
        if self._file is None:
            return
        if self._warnings is not None:
            self._warnings.__exit__(None, None, None)
            self._warnings = None
        root = logging.getLogger()
        if self._root_handler is not None:
            root.removeHandler(self._root_handler)
            self._root_handler = None
        root.setLevel(self._saved_root_level)
        for handler, stream in reversed(self._redirected):
            handler.setStream(stream)
        self._redirected.clear()
        out, err = self._saved_streams
        # Handlers created during the capture (e.g. a function's Powertools Logger) write where they would have.
        for logger in _all_loggers():
            for handler in logger.handlers:
                if isinstance(handler, logging.StreamHandler) and handler.stream is self._stdout:
                    handler.setStream(out)
                elif isinstance(handler, logging.StreamHandler) and handler.stream is self._stderr:
                    handler.setStream(err)
        sys.stdout, sys.stderr = out, err
        assert self._stdout is not None and self._stderr is not None
        self._stdout.release()
        self._stderr.release()
        with self._lock:
            self._file.close()
            self._file = None

    # ------------------------------------------------------------------ helpers
    def _show_warning(
        self,
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        if self._stderr is not None:
            self._stderr.write(warnings.formatwarning(message, category, filename, lineno, line))

    def written_before_root(self, record: logging.LogRecord) -> bool:
        """Whether another handler that writes to the log file has handled ``record`` on its way to the root."""
        root = logging.getLogger()
        logger: logging.Logger | logging.PlaceHolder | None = logging.Logger.manager.loggerDict.get(record.name, root)
        mine = (self._stdout, self._stderr)
        while isinstance(logger, logging.Logger):
            for handler in logger.handlers:
                if (
                    handler is not self._root_handler
                    and isinstance(handler, logging.StreamHandler)
                    and any(handler.stream is stream for stream in mine)
                    and record.levelno >= handler.level
                ):
                    return True
            if not logger.propagate:
                return False
            logger = logger.parent
        return False


def _all_loggers() -> list[logging.Logger]:
    loggers = [value for value in list(logging.Logger.manager.loggerDict.values()) if isinstance(value, logging.Logger)]
    return [logging.getLogger(), *loggers]


def _is_console(stream: Any, consoles: list[Any]) -> bool:
    if any(stream is console for console in consoles):
        return True
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _is_powertools_handler(logger: logging.Logger, handler: logging.Handler) -> bool:
    return getattr(logger, "powertools_handler", None) is handler
