"""Parameter values checked before the first notebook starts (:mod:`toxhelpers.run.checks`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tiny_lessons import stable_code  # noqa: F401 (fixtures)
from toxhelpers.run import checks
from toxhelpers.run.cli import main
from toxhelpers.run.notebooks import DEFAULT_NOTEBOOKS_DIR, discover_notebooks
from toxhelpers.run.parameters import available_profiles, declared_parameters, load_profile


def test_shipped_profiles_and_notebook_defaults_pass_the_parameter_checks() -> None:
    """The checks' own table is honest: it names only real parameters, every notebook default
    and every shipped profile passes it, and keys declared by several notebooks agree on a type."""
    declared = declared_parameters(discover_notebooks(DEFAULT_NOTEBOOKS_DIR))
    known = {key for params in declared.values() for key in params}
    assert set(checks.parameter_rules()) <= known
    defaults = checks.notebook_defaults(declared)
    for key, values in defaults.items():
        kinds = {checks.kind_of(value) for value in values} - {None}
        assert checks.merge_kinds(list(kinds)) is not None or not kinds, f"{key}: {values}"
        for value in values:
            checks.checked_values({key: value}, declared)
    for name in available_profiles():
        checks.checked_values(load_profile(name)[1], declared)


@pytest.mark.parametrize("override, expected", [
    ("learning_rate=fast", "parameter learning_rate=fast: expected a number in (0, 1]"),
    ("learning_rate=0", "parameter learning_rate=0: expected a number in (0, 1]"),
    ("label_rule=no", "parameter label_rule=no: expected one of 'toxic', 'any'"),
    ("epochs=abc", "parameter epochs=abc: expected an integer in [1, 1000]"),
    ("epochs=true", "parameter epochs=true: expected an integer in [1, 1000]"),
    ("epochs=2.5", "parameter epochs=2.5: expected an integer in [1, 1000]"),
    ("max_length=-1", "parameter max_length=-1: expected an integer >= 2"),
    ("batch_size=0", "parameter batch_size=0: expected an integer in [1, 65536]"),
    ("validation_fraction=1", "parameter validation_fraction=1: expected a number in (0, 1)"),
    ("grid_head_sizes=[[32], [0]]", "parameter grid_head_sizes=[[32], [0]]: expected a list of lists of integers in "
                                    "[1, 65536] (at least one item, no item twice)"),
    ("new_comments=hello", "parameter new_comments=hello: expected a list of texts (at least one item)"),
    ("max_test_rows=all", "parameter max_test_rows=all: expected an integer in [2, 10000000] or null (None)"),
    ("seed=-1", "parameter seed=-1: expected an integer in [0, 4294967295]"),
    ("mitigation_seeds=[]", "parameter mitigation_seeds=[]: expected a list of integers in [0, 4294967295] "
                            "(at least one item, no item twice)"),
    # issue 22 row 7: values that cannot work used to pass and fail late, inside a lesson
    ("grid_poolings=[]", "parameter grid_poolings=[]: expected a list of items from 'cls', 'mean' "
                         "(at least one item, no item twice)"),
    ("grid_poolings=[mean, max]", "parameter grid_poolings=[mean, max]: expected a list of items from 'cls', "
                                  "'mean' (at least one item, no item twice)"),
    ("grid_poolings=[mean, mean]", "parameter grid_poolings=[mean, mean]: expected a list of items from 'cls', "
                                   "'mean' (at least one item, no item twice)"),
    ("label_counts=[]", "parameter label_counts=[]: expected a list of integers in [0, 10000000] "
                        "(at least one item, in increasing order)"),
    ("label_counts=[0, 50, 25]", "parameter label_counts=[0, 50, 25]: expected a list of integers in [0, 10000000] "
                                 "(at least one item, in increasing order)"),
    ("label_counts=[0, 1000000000]", "parameter label_counts=[0, 1000000000]: expected a list of integers in "
                                     "[0, 10000000] (at least one item, in increasing order)"),
    ("benchmark_batch_sizes=[]", "parameter benchmark_batch_sizes=[]: expected a list of integers in [1, 65536] "
                                 "(at least one item, no item twice)"),
    ("serving_comments=[only one]", "parameter serving_comments=[only one]: expected a list of texts "
                                    "(at least 2 items)"),
    ("length_edges=[256,32]", "parameter length_edges=[256,32]: expected a list of integers in [1, 100000] "
                              "(at least one item, in increasing order)"),
    ("tfidf_C_grid=[]", "parameter tfidf_C_grid=[]: expected a list of numbers in (0, 1000000] "
                        "(at least one item, no item twice)"),
    ("tfidf_C_grid=[1, 1.0]", "parameter tfidf_C_grid=[1, 1.0]: expected a list of numbers in (0, 1000000] "
                              "(at least one item, no item twice)"),
    ("onnx_opset=-1", "parameter onnx_opset=-1: expected an integer in [13, 18]"),
    ("mitigation_seeds=[42,42]", "parameter mitigation_seeds=[42,42]: expected a list of integers in "
                                 "[0, 4294967295] (at least one item, no item twice)"),
    ("calibration_bins=1e9", "parameter calibration_bins=1e9: expected an integer in [1, 1000]"),
    ("calibration_bins=1000000000", "parameter calibration_bins=1000000000: expected an integer in [1, 1000]"),
    ("template_rows=1000000000", "parameter template_rows=1000000000: expected an integer in [100, 10000000] "
                                 "or null (None)"),
    ("mitigation_sentences=1000000000", "parameter mitigation_sentences=1000000000: expected an integer in "
                                        "[2, 100000]"),
    ("templates_dir=/nonexistent", "parameter templates_dir=/nonexistent: no such folder; expected an existing folder"),
    ("data_dir=", "parameter data_dir=: expected a path (an empty one would silently fall back to the default) "
                  "or null (None)"),
    ("templates_dir=", "parameter templates_dir=: expected a path (an empty one would silently fall back to the "
                       "default) or null (None)"),
])
def test_bad_values_stop_the_run_before_it_starts(tmp_path: Path, capsys, override: str, expected: str) -> None:
    argv = ["--profile", "smoke", "-p", override, "--out", str(tmp_path / "report"), "--dry-run"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"toxhelpers run: error: {expected}\n" == err
    assert not (tmp_path / "report").exists()


def test_sequence_length_is_capped_by_the_encoder(tmp_path: Path, capsys, bundled_checkpoint) -> None:
    """max_length beyond the encoder's position embeddings is refused before the run."""
    argv = ["--profile", "smoke", "--out", str(tmp_path / "report"), "--dry-run"]
    assert main(argv + ["-p", "checkpoint=bundled", "-p", "max_length=100000"]) == 2
    assert "parameter max_length=100000: expected at most 512, the max_position_embeddings of checkpoint 'bundled'" \
        in capsys.readouterr().err
    small = tmp_path / "small-encoder"
    small.mkdir()
    config = json.loads((bundled_checkpoint.path / "config.json").read_text())
    (small / "config.json").write_text(json.dumps(config | {"max_position_embeddings": 64}))
    assert main(argv + ["-p", f"checkpoint={small}", "-p", "benchmark_length=65"]) == 2
    assert "parameter benchmark_length=65: expected at most 64" in capsys.readouterr().err
    assert main(argv + ["-p", "checkpoint=not-cached-anywhere/xyz", "-p", "max_length=513"]) == 2
    assert "expected at most 512, the usual limit of BERT-family encoders" in capsys.readouterr().err
    assert main(argv + ["-p", f"checkpoint={small}", "-p", "max_length=64"]) == 0


def test_the_spelled_out_choices_match_the_modules() -> None:
    """checks.py spells out choices of modules that import TensorFlow; they must agree."""
    import tf2onnx.constants

    from toxhelpers import model, serving

    assert checks.POOLINGS == model.POOLINGS
    low, high = checks.ONNX_OPSETS
    assert low <= serving.DEFAULT_OPSET <= high <= max(tf2onnx.constants.OPSET_TO_IR_VERSION)
