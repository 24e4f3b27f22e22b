"""The runner's per-notebook memory watch sees what a child process really held.

Each measurement runs in a fresh Python process of its own, so the only descendants the watch can
see are the ones the test starts: in a long test session, kernels that earlier tests started may
still be ending, and their memory would otherwise be counted too.
"""

from __future__ import annotations

import json
import subprocess
import sys

from toxhelpers.run.peak_memory import high_water_mb

ALLOCATE = ("import time; block = bytearray({mb} * 1024 * 1024); block[::4096] = b'x' * len(block[::4096]); "
            "{after}time.sleep({hold})")


def watched_peak_mb(child_code: str, interval: float) -> float:
    """PeakMemory's reading, in a clean process, while that process runs ``child_code`` as its child."""
    watcher = ("import subprocess, sys\n"
               "from toxhelpers.run.peak_memory import PeakMemory\n"
               f"with PeakMemory(interval={interval}) as watch:\n"
               f"    subprocess.run([sys.executable, '-c', {child_code!r}], check=True)\n"
               "print(watch.peak_mb)\n")
    result = subprocess.run([sys.executable, "-c", watcher], capture_output=True, text=True, check=True)
    return float(result.stdout.strip().splitlines()[-1])


def test_peak_memory_sees_a_child_that_holds_memory():
    assert 300 <= watched_peak_mb(ALLOCATE.format(mb=300, after="", hold=0.5), interval=0.05) < 600


def test_peak_memory_catches_a_peak_between_samples_through_the_high_water_mark():
    """The child allocates and frees 400 MB between two samples, then idles: only VmHWM saw it."""
    assert watched_peak_mb(ALLOCATE.format(mb=400, after="del block; ", hold=1.5), interval=0.7) >= 400


def peak_and_where(child_code: str, labels: list[tuple[str, float]]) -> tuple[str, float]:
    """PeakMemory's ``peak_at`` and peak, in a clean process, while its child runs ``child_code``
    and ``where`` (the executor's current cell) steps through ``labels``: (label, seconds) each,
    the last held until the child ends."""
    watcher = ("import json, subprocess, sys, time\n"
               "from toxhelpers.run.peak_memory import PeakMemory\n"
               f"labels = {labels!r}\n"
               "running = [labels[0][0]]\n"
               "with PeakMemory(interval=0.05, where=lambda: running[0]) as watch:\n"
               f"    process = subprocess.Popen([sys.executable, '-c', {child_code!r}])\n"
               "    for (_, seconds), (following, _) in zip(labels, labels[1:]):\n"
               "        time.sleep(seconds); running[0] = following\n"
               "    process.wait()\n"
               "print(json.dumps([watch.peak_at, watch.peak_mb]))\n")
    result = subprocess.run([sys.executable, "-c", watcher], capture_output=True, text=True, check=True)
    where, peak = json.loads(result.stdout.strip().splitlines()[-1])
    return where, peak


def test_the_peak_is_counted_to_what_was_running_when_it_was_seen():
    """The child holds 50 MB from its start, 300 MB more from its second second to its third, then
    frees them; the label is 'small' for half a second, 'large' until second 3.5, then 'after'.
    The peak belongs to 'large', not to the last."""
    child = ("import time; small = bytearray(50 * 2**20); small[::4096] = b'x' * len(small[::4096]); time.sleep(1.0); "
             + ALLOCATE.format(mb=300, after="", hold=1.0) + "; del block; time.sleep(1.5)")
    where, peak = peak_and_where(child, [("small", 0.5), ("large", 3.0), ("after", 0.0)])
    assert where == "large" and peak >= 300


def test_a_few_mb_more_later_do_not_move_the_peak_to_a_later_cell():
    """The child takes 300 MB while the label is 'large', then 2 MB more (under 1% of the peak)
    while it is 'creep': the high-water mark rises last in 'creep', but the memory was taken in
    'large', and that is the cell a reader has to change."""
    child = ("import time; time.sleep(0.5); "
             + ALLOCATE.format(mb=300, after="", hold=1.5)
             + "; extra = bytearray(2 * 2**20); extra[::4096] = b'x' * len(extra[::4096]); time.sleep(1.0)")
    where, peak = peak_and_where(child, [("start", 0.3), ("large", 1.5), ("creep", 0.0)])
    assert where == "large" and peak >= 300


def test_rises_give_the_level_each_cell_reached_before_the_peak():
    """The child takes 150 MB while the label is 'first', 250 MB more while it is 'second', then
    idles ('idle'): the rises say 'first' reached ~150 MB, 'second' the peak, and 'idle', which
    raised nothing, is left out. That is how a reader tells a fit already over the budget from a
    timing after it that added the last MB. The child allocates only when told to and says when it
    has, so a loaded machine (a slow start) cannot move an allocation under another label."""
    child = ("def take(mb):\n"
             "    block = bytearray(mb * 2**20); block[::4096] = b'x' * len(block[::4096]); return block\n"
             "input(); first = take(150); print('done', flush=True)\n"
             "input(); second = take(250); print('done', flush=True)\n"
             "input()\n")
    watcher = ("import json, subprocess, sys, time\n"
               "from toxhelpers.run.peak_memory import PeakMemory\n"
               "running = ['start']\n"
               "with PeakMemory(interval=0.05, where=lambda: running[0]) as watch:\n"
               f"    child = subprocess.Popen([sys.executable, '-c', {child!r}], stdin=subprocess.PIPE,\n"
               "                             stdout=subprocess.PIPE, text=True)\n"
               "    for label in ('first', 'second', 'idle'):\n"
               "        running[0] = label\n"
               "        child.stdin.write('\\n'); child.stdin.flush()\n"
               "        if label != 'idle':\n"
               "            child.stdout.readline()\n"
               "        time.sleep(1.0)  # the watch samples the allocation under its label\n"
               "    child.wait()\n"
               "print(json.dumps([watch.peak_at, watch.peak_mb, watch.rises]))\n")
    result = subprocess.run([sys.executable, "-c", watcher], capture_output=True, text=True, check=True)
    where, peak, rises = json.loads(result.stdout.strip().splitlines()[-1])
    assert where == "second" and list(rises)[-2:] == ["first", "second"] and "idle" not in rises
    assert 150 <= rises["first"] < 350 and rises["second"] == peak >= 400


def test_high_water_of_a_missing_process_is_zero():
    assert high_water_mb(2 ** 22 + 12345) == 0.0
