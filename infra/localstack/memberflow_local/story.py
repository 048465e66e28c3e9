"""What the demo shows on screen: scene headings, indented lines and plain-text progress bars.

On a terminal a progress bar is redrawn in place (``\\r``); otherwise (a file, a pipe, a CI log) it is printed as a
few separate lines, at each quarter of the way and at the end.
"""

from __future__ import annotations

import textwrap
from typing import TextIO

INDENT = "     "
TEXT_WIDTH = 80
"""Scene titles and paragraphs wrap at this width."""


class Story:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        try:
            self.tty = bool(out.isatty())
        except (AttributeError, ValueError):
            self.tty = False

    def line(self, text: str = "", *, indent: bool = False) -> None:
        self.out.write((INDENT if indent and text else "") + text + "\n")
        self.out.flush()

    def paragraph(self, text: str) -> None:
        for part in textwrap.wrap(text, TEXT_WIDTH):
            self.line(part)

    def scene(self, number: int, total: int, title: str) -> None:
        heading = f"{number}/{total} "  # at least one space before the title, however many scenes
        self.line()
        for text in textwrap.wrap(
            title, TEXT_WIDTH, initial_indent=f"{heading:<{len(INDENT)}}", subsequent_indent=INDENT
        ):
            self.line(text)

    def progress(self, label: str, total: int) -> ProgressBar:
        return ProgressBar(self, label, total)


class ProgressBar:
    """``[#####-----] 23/56  label``; ``update`` may raise the total (work that arrives while waiting)."""

    WIDTH = 24

    def __init__(self, story: Story, label: str, total: int) -> None:
        self.story = story
        self.label = label
        self.done = 0
        self.total = max(0, total)
        self._printed_quarter = -1
        self._drawn = 0
        self._last = ""
        self._finished = False

    def text(self) -> str:
        total = max(self.total, self.done, 1)
        filled = round(self.WIDTH * self.done / total)
        counts = f"{self.done}/{max(self.total, self.done)}"
        return f"[{'#' * filled}{'-' * (self.WIDTH - filled)}] {counts}  {self.label}"

    def update(self, done: int, total: int | None = None) -> None:
        if self._finished:
            return
        self.done = done
        if total is not None:
            self.total = max(total, done)
        if self.story.tty:
            self._redraw()
            return
        quarter = 4 * self.done // max(self.total, 1)
        if 0 < quarter < 4 and quarter > self._printed_quarter:
            self._printed_quarter = quarter
            self.story.line(self.text(), indent=True)

    def finish(self) -> None:
        if self._finished:
            return
        self._finished = True
        if self.story.tty:
            self._redraw()
            self.story.out.write("\n")
            self.story.out.flush()
        else:
            self.story.line(self.text(), indent=True)

    def _redraw(self) -> None:
        text = INDENT + self.text()
        if text == self._last:
            return
        self._last = text
        padding = " " * max(0, self._drawn - len(text))
        self._drawn = len(text)
        self.story.out.write("\r" + text + padding)
        self.story.out.flush()
