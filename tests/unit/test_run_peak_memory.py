"""The runner's per-notebook memory watch sees what a child process really held."""

from __future__ import annotations

import subprocess
import sys

from toxhelpers.run.peak_memory import PeakMemory, high_water_mb

ALLOCATE = "import time; block = bytearray({mb} * 1024 * 1024); block[::4096] = b'x' * len(block[::4096]); time.sleep({hold})"


def already_running_children_mb() -> float:
    """What children this test process had before (earlier tests in the session may leave some)."""
    before = PeakMemory()
    before.sample()
    return before.peak_mb


def test_peak_memory_sees_a_child_that_holds_memory():
    baseline = already_running_children_mb()
    with PeakMemory(interval=0.05) as watch:
        subprocess.run([sys.executable, "-c", ALLOCATE.format(mb=300, hold=0.5)], check=True)
    assert 300 <= watch.peak_mb < baseline + 600


def test_peak_memory_catches_a_peak_between_samples_through_the_high_water_mark():
    """The child allocates and frees 400 MB between two samples, then idles: only VmHWM saw it."""
    code = ("import time; block = bytearray(400 * 1024 * 1024); block[::4096] = b'x' * len(block[::4096]); "
            "del block; time.sleep(1.5)")
    with PeakMemory(interval=0.7) as watch:
        subprocess.run([sys.executable, "-c", code], check=True)
    assert watch.peak_mb >= 400


def test_high_water_of_a_missing_process_is_zero():
    assert high_water_mb(2 ** 22 + 12345) == 0.0
