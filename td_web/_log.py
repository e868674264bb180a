from __future__ import annotations

import logging
import time

logger = logging.getLogger("td_web")


class ThrottledLog:
    """Logs each distinct message kind at most once per ``interval`` seconds.

    Bad input tends to repeat on every request; one clear line a minute says as much as
    ten thousand identical ones, and costs nothing on the hot path after the first. The key is
    a *kind* (a constant), never built from the offending value, or distinct values would each
    get their own line.

    There is deliberately no lock: a SIGTERM handler runs on the main thread between any two
    bytecodes, possibly while that thread is inside this very method, and it then waits for
    the sender thread, which logs through here too. Each dict operation is atomic; a race at
    worst logs one extra line or miscounts the suppressed ones.
    """

    def __init__(self, interval: float = 60.0, max_keys: int = 1024) -> None:
        self._interval = interval
        self._max_keys = max_keys
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def _due(self, key: str) -> int | None:
        """Returns how many repeats were suppressed when the key may log now, else None."""
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self._interval:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return None
        if len(self._last) >= self._max_keys:
            self._last.clear()
            self._suppressed.clear()
        self._last[key] = now
        return self._suppressed.pop(key, 0)

    def reset(self) -> None:
        """Forget what was logged (tests use it so that each sees its own first warning)."""
        self._last.clear()
        self._suppressed.clear()

    def log(
        self, level: int, key: str, message: str, *args: object, exc_info: bool = False
    ) -> None:
        suppressed = self._due(key)
        if suppressed is None:
            return
        if suppressed:
            message += " (%d similar messages suppressed)"
            args = (*args, suppressed)
        logger.log(level, message, *args, exc_info=exc_info)

    def warning(self, key: str, message: str, *args: object) -> None:
        self.log(logging.WARNING, key, message, *args)

    def error(self, key: str, message: str, *args: object) -> None:
        self.log(logging.ERROR, key, message, *args)

    def exception(self, key: str, message: str, *args: object) -> None:
        """An error with the current exception's traceback: for the application's own code
        (a user loader, an exclude callable) failing the same way on every request."""
        self.log(logging.ERROR, key, message, *args, exc_info=True)


throttled = ThrottledLog()
