"""Terminal output for the command line: tables that fit the width, wrapped lines, verdict colours
and progress on stderr.

``rich`` does the layout: it measures cells of any Unicode text (𝓛, ᵀ, combining marks), elides
with "…", and decides on colour the way terminals expect (only on a terminal; ``NO_COLOR`` turns
it off, ``FORCE_COLOR`` on).  The width is ``COLUMNS`` if set, else the terminal's, else 100 (a
pipe).  Text is never read as rich markup: claims are full of brackets.
"""

from __future__ import annotations

import re
import shutil
import sys
import textwrap

from rich.console import Console
from rich.progress import BarColumn, Progress as RichProgress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

PIPE_WIDTH = 100
STYLES = {"proved": "green", "refuted": "bold red", "ill-formed": "magenta", "undecided": "yellow",
          "UNEXPECTED": "bold red", "warning": "yellow", "error": "bold red"}
_TRAILING = re.compile(r" +((?:\x1b\[[0-9;]*m)*)$")


def width() -> int:
    return max(20, shutil.get_terminal_size((PIPE_WIDTH, 24)).columns)


def console(file=None) -> Console:
    """A console for ``file`` (stdout): our width, no markup, colour as the environment says."""
    return Console(file=file or sys.stdout, width=width(), markup=False, highlight=False, emoji=False,
                   soft_wrap=False)


class Screen:
    """Renders to strings for one stream; ``colour`` is rich's decision for that stream."""

    def __init__(self, file=None):
        self.console = console(file)
        self.width = self.console.width
        self.colour = self.console.color_system is not None and not self.console.no_color

    def render(self, renderable) -> str:
        with self.console.capture() as captured:
            self.console.print(renderable)
        return "\n".join(_TRAILING.sub(r"\1", line) for line in captured.get().rstrip("\n").split("\n"))

    def styled(self, text: str, style: str | None = None) -> str:
        """``text`` in the colour of its verdict (or of ``style``), when colour is on."""
        style = style or STYLES.get(text.split(" ")[0])
        if not (self.colour and style):
            return text
        return self.render(Text(text, style=style, no_wrap=True, overflow="ignore"))

    def table(self, headers: list[str], rows: list[list[str]], *, elide: int | None = None,
              right: tuple = (), styled: tuple = ()) -> str:
        """One line per row, whatever the width: column ``elide`` gives way (with "…") when the
        table is wider than the terminal.  ``right``: right-aligned columns; ``styled``: columns
        whose cells take their verdict's colour."""
        table = Table(box=None, pad_edge=False, padding=(0, 1), show_edge=False,
                      header_style="bold" if self.colour else None)
        for index, header in enumerate(headers):
            table.add_column(header, no_wrap=index != elide, justify="right" if index in right else "left")
        for row in rows:
            cells = []
            for index, cell in enumerate(row):
                style = STYLES.get(str(cell).split(" ")[0]) if index in styled and self.colour else None
                cells.append(Text(str(cell), style=style or "", no_wrap=True, overflow="ellipsis"))
            table.add_row(*cells)
        return self.render(table)

    def wrap(self, text: str, indent: str = "", hanging: str | None = None) -> str:
        """``text`` wrapped to the width at spaces, the first line after ``indent``, the others
        after ``hanging`` (default: ``indent`` and two spaces)."""
        hanging = indent + "  " if hanging is None else hanging
        return textwrap.fill(text, width=self.width, initial_indent=indent, subsequent_indent=hanging,
                             break_long_words=False, break_on_hyphens=False) or indent.rstrip()

    def list(self, label: str, items: list[str], separator: str = "; ") -> str:
        """``label`` followed by ``items``, wrapped between items (an item is never split unless it is
        wider than a line)."""
        lines, line = [], label
        for number, item in enumerate(items):
            piece = item + (separator.rstrip() if number < len(items) - 1 else "")
            candidate = f"{line} {piece}" if line.strip() else line + piece
            if len(candidate) > self.width and line.strip():
                lines.append(line)
                line = "  " + piece
            else:
                line = candidate
        lines.append(line)
        return "\n".join(self.wrap(line[2:], "  ", "    ") if len(line) > self.width and line.startswith("  ")
                         else line for line in lines)


class Progress:
    """One transient status line on stderr, only when stderr is a terminal (and not ``quiet``)."""

    def __init__(self, enabled: bool | None = None):
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self._status = None

    def __call__(self, message: str) -> None:
        if not self.enabled:
            return
        if self._status is None:
            self._status = console(sys.stderr).status(message)
            self._status.start()
        else:
            self._status.update(message)

    def done(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None


def progress_bar() -> RichProgress:
    """A transient progress bar on stderr (``train``'s epochs)."""
    return RichProgress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn(),
                        console=console(sys.stderr), transient=True)
