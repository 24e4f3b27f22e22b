"""benchmarks/benchmark_records.py: a record is never written over another run's."""

from __future__ import annotations

import json
import sys

from conftest import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT / "benchmarks"))
import benchmark_records  # noqa: E402


def test_a_record_already_there_is_kept_and_this_run_rewrites_only_its_own(tmp_path, monkeypatch):
    monkeypatch.setattr(benchmark_records, "RESULTS_DIR", tmp_path)
    monkeypatch.setattr(benchmark_records, "_WRITTEN", {})
    (tmp_path / "scaling_2026-12-07.json").write_text('{"run": "earlier"}\n')
    (tmp_path / "scaling_2026-12-07.md").write_text("earlier\n")

    first = benchmark_records.save_record("scaling", {"run": "this", "step": 1}, ["step 1"], date="2026-12-07")
    again = benchmark_records.save_record("scaling", {"run": "this", "step": 2}, ["step 2"], date="2026-12-07")

    assert first == again == tmp_path / "scaling_2026-12-07_2"
    assert json.loads((tmp_path / "scaling_2026-12-07_2.json").read_text()) == {"run": "this", "step": 2}
    assert (tmp_path / "scaling_2026-12-07.md").read_text() == "earlier\n"  # the earlier run's, untouched
    assert json.loads((tmp_path / "scaling_2026-12-07.json").read_text()) == {"run": "earlier"}
    other_day = benchmark_records.save_record("scaling", {"run": "this"}, "text", date="2026-12-08")
    assert other_day == tmp_path / "scaling_2026-12-08"
