"""The compact progress view: an in-place line on a terminal, plain lines anywhere else."""

from __future__ import annotations

import io
import time

from toxhelpers.run.progress import CellProgress, clock, first_line


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def show(progress: CellProgress) -> None:
    """A notebook of a markdown cell and two code cells, the second one failing halfway."""
    with progress:
        progress.begin(3)
        progress.cell_started(1, "# Title", is_code=False)
        progress.cell_finished()
        progress.cell_started(2, "\n  import numpy as np\nx = 1", is_code=True)
        progress.cell_finished()
        progress.cell_started(3, "", is_code=True)


def test_plain_lines_when_not_a_terminal() -> None:
    stream = io.StringIO()
    show(CellProgress(stream))
    assert stream.getvalue().splitlines() == ["    0:00:00  cell 2/3  import numpy as np",
                                              "    0:00:00  cell 3/3  (empty cell)"]
    assert "\r" not in stream.getvalue()


def test_one_line_redrawn_in_place_on_a_terminal() -> None:
    stream = Terminal()
    show(CellProgress(stream, tick=60))
    text = stream.getvalue()
    assert "\n" not in text and text.endswith("\r\x1b[K")  # cleared for the notebook's "done" line
    assert "[#############.......] 2/3 cells 0:00:00  cell 3 (0s): (empty cell)" in text
    assert "cell 2 (0s): import numpy as np" in text


def test_the_line_fits_the_terminal() -> None:
    progress = CellProgress(Terminal(), tick=60)
    progress.begin(40)
    progress.cell_started(7, "history = model.fit(" + "x, " * 100 + ")", is_code=True)
    assert len(progress.status_line(80)) == 79
    assert progress.status_line(80).startswith("    [....................] 0/40 cells 0:00:00  cell 7 (0s): history")


def test_the_running_cell_is_redrawn_while_it_runs() -> None:
    """A long cell shows as a long step: the line is redrawn with its clock moving."""
    stream = Terminal()
    with CellProgress(stream, tick=0.05) as progress:
        progress.begin(2)
        progress.cell_started(2, "time.sleep(600)", is_code=True)
        time.sleep(0.3)
    assert stream.getvalue().count("cell 2 (0s): time.sleep(600)") >= 3


def test_helpers() -> None:
    assert clock(3725) == "1:02:05"
    assert first_line("\n\n  # Train the head\nmodel.fit()") == "# Train the head"
    assert first_line("x = " + "1" * 200) == "x = " + "1" * 93 + "..."


def test_a_finished_cell_stops_its_clock() -> None:
    """After the last cell papermill still saves and stops the kernel: not the cell's time."""
    progress = CellProgress(Terminal(), tick=60)
    progress.begin(2)
    progress.cell_started(2, "x = 1", is_code=True)
    progress.cell_finished()
    assert progress.status_line(200) == "    [##########..........] 1/2 cells 0:00:00"


def test_the_running_cells_latest_output_line_follows_it() -> None:
    """A training progress bar (tqdm redraws with a carriage return) shows its steps done and the
    time left on the terminal line; the next cell starts without it."""
    progress = CellProgress(Terminal(), tick=60)
    progress.begin(30)
    progress.cell_started(12, "training.seed_everything(seed)  # the same shuffles and dropout draws on every run", True)
    progress.output("epoch 1/1:   0%|          | 0/13 [00:00<?, ?batch/s]")
    progress.output("\repoch 1/1:  38%|###8      | 5/13 [00:30<00:48,  6.02s/batch]")
    progress.output("\n")
    line = progress.status_line(200)
    assert line.endswith("cell 12 (0s): training.seed_everything(seed)  # the...  "
                         "| epoch 1/1:  38%|###8      | 5/13 [00:30<00:48,  6.02s/batch]")
    progress.cell_finished()
    progress.cell_started(13, "history.round(4)", True)
    assert progress.status_line(200).endswith("cell 13 (0s): history.round(4)")
