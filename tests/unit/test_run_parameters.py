"""The run's parameter set: precedence, paths, declared keys, types (nothing runs here)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tiny_lessons import lessons, options, profile, stable_code, write_notebook  # noqa: F401 (fixtures)
from toxhelpers.run.errors import UsageError
from toxhelpers.run.notebooks import DEFAULT_NOTEBOOKS_DIR, discover_notebooks
from toxhelpers.run.orchestrate import RunOptions, prepare
from toxhelpers.run.parameters import (available_profiles, check_known, declared_parameters, load_profile,
                                       resolve_parameters)


def test_precedence_profile_config_then_p(tmp_path: Path, profile: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("parameters:\n  size: 5\n  seed: 1\n")
    params = resolve_parameters(str(profile), config, ["seed=7", "fail=false"], base=tmp_path)
    assert params.values["size"] == 5  # config beats profile
    assert params.values["seed"] == 7  # -p beats config
    assert params.values["fail"] is False  # YAML-parsed
    assert params.values["data_file"] == str(tmp_path / "numbers.txt")
    assert params.profile == "tiny" and params.description == "tiny test profile"


def test_relative_paths_are_resolved_against_the_invoking_folder(tmp_path: Path, profile: Path) -> None:
    params = resolve_parameters(str(profile), None, ["data_file=sub/x.txt", "label_rule=any"],
                                       base=tmp_path)
    assert params.values["data_file"] == str(tmp_path / "sub" / "x.txt")
    assert params.values["label_rule"] == "any"


def test_each_notebook_gets_only_its_keys(lessons: Path, profile: Path) -> None:
    ctx, selected = prepare(options(lessons, profile, overrides=["scale=3"]))
    assert [path.name for path in selected] == ["01_make.ipynb", "02_use.ipynb"]
    make, use = (ctx.passed(path) for path in selected)
    artifacts = str(lessons.parent / "report" / "artifacts")
    assert make == {"artifacts_dir": artifacts, "data_file": str(lessons.parent / "numbers.txt"), "size": 2}
    assert use == {"artifacts_dir": artifacts, "scale": 3}
    assert ctx.declared["02_use.ipynb"] == {"artifacts_dir": '"../artifacts"', "scale": "2", "fail": "False"}


def test_unknown_key_is_an_error_with_a_suggestion(lessons: Path, profile: Path) -> None:
    with pytest.raises(UsageError, match=r"no notebook declares parameter 'scal' \(did you mean 'scale'\?\)"):
        prepare(options(lessons, profile, overrides=["scal=3"]))
    with pytest.raises(UsageError, match="artifacts_dir is set by the runner"):
        prepare(options(lessons, profile, overrides=["artifacts_dir=/tmp/x"]))


def test_shipped_profiles_only_use_declared_keys() -> None:
    """Typo protection for the profiles themselves: every key is some real notebook's parameter."""
    declared = declared_parameters(discover_notebooks(DEFAULT_NOTEBOOKS_DIR))
    assert {"smoke", "demo", "full"} <= set(available_profiles())
    for name in available_profiles():
        description, values = load_profile(name)
        assert description, f"profile {name} needs a description"
        check_known(values, declared)


def real_lessons(tmp_path: Path, *overrides: str, **changes) -> RunOptions:
    """The real lessons' parameter cells under the smoke profile (only prepared: nothing runs)."""
    return RunOptions(profile="smoke", overrides=list(overrides), out=tmp_path / "report", quiet=True, **changes)


def test_values_take_the_type_of_the_notebooks_defaults(tmp_path: Path) -> None:
    """YAML 1.1 reads 2e-5 as text and no as False: the notebooks' defaults say what was meant."""
    ctx, _ = prepare(real_lessons(tmp_path, "learning_rate=2e-5", "grid_learning_rates=[2e-5, 1]",
                                         "augment_target=0.3", "max_train_rows=null", "checkpoint=no",
                                         "contextual_checkpoint=2024-01-01"))
    values = ctx.params.values
    assert values["learning_rate"] == 2e-5 and type(values["learning_rate"]) is float
    assert values["grid_learning_rates"] == [2e-5, 1.0]
    assert values["augment_target"] == 0.3 and values["max_train_rows"] is None
    assert values["checkpoint"] == "no"  # a text parameter gets the text typed, not YAML's False
    assert values["contextual_checkpoint"] == "2024-01-01"  # nor YAML's date
    config = tmp_path / "config.yaml"
    config.write_text("parameters:\n  learning_rate: 2e-5\n")
    ctx, _ = prepare(real_lessons(tmp_path, config=config))
    assert ctx.params.values["learning_rate"] == 2e-5


def test_a_checkpoint_folder_is_found_where_the_command_runs(tmp_path: Path, profile: Path) -> None:
    """Notebooks run in notebooks/: a relative folder must be made absolute, or it would be taken
    for a hub name there (and silently replaced by the bundled fallback)."""
    (tmp_path / "mydir").mkdir()
    params = resolve_parameters(str(profile), None, ["checkpoint=mydir", "contextual_checkpoint=./mydir"],
                                       base=tmp_path)
    assert params.values["checkpoint"] == params.values["contextual_checkpoint"] == str(tmp_path / "mydir")
    hub = resolve_parameters(str(profile), None, ["checkpoint=distilbert-base-uncased",
                                                         "contextual_checkpoint=bundled"], base=tmp_path)
    assert hub.values["checkpoint"] == "distilbert-base-uncased" and hub.values["contextual_checkpoint"] == "bundled"
    with pytest.raises(UsageError, match=r"parameter checkpoint=\./nope: .*/nope is not a folder; expected an existing "
                                         r"folder \(relative to .*\) or a Hugging Face hub model name"):
        resolve_parameters(str(profile), None, ["checkpoint=./nope"], base=tmp_path)


def received(ctx, name: str) -> dict:
    return ctx.passed(next(path for path in ctx.notebooks if path.stem.startswith(name)))


def test_a_scoped_value_reaches_one_notebook_only(tmp_path: Path) -> None:
    """Issue 21/22: -p 06.epochs=2 (or 06_finetuning.epochs=2, also in a config file) sets lesson
    6's epochs and leaves lesson 11's alone; within one source the scoped value is the more
    specific, a plain value from a later source replaces earlier scoped ones."""
    for key in ("06.epochs", "06_finetuning.epochs", "6.epochs"):
        ctx, _ = prepare(real_lessons(tmp_path, f"{key}=2"))
        assert received(ctx, "06")["epochs"] == 2 and received(ctx, "11")["epochs"] == 1  # the smoke profile's
        assert ctx.params.values["06_finetuning.epochs"] == 2  # one spelling, reusable as --config
    config = tmp_path / "config.yaml"
    config.write_text("parameters:\n  06.patience: 3\n")
    ctx, _ = prepare(real_lessons(tmp_path, "06.epochs=2", "11.epochs=4", config=config))
    assert (received(ctx, "11")["epochs"], received(ctx, "06")["epochs"], received(ctx, "06")["patience"]) == (4, 2, 3)
    assert "patience" not in received(ctx, "11")
    ctx, _ = prepare(real_lessons(tmp_path, "epochs=3", "06.epochs=2", only=["06", "11"]))  # plain replaces the profile's
    assert received(ctx, "11")["epochs"] == 3 and received(ctx, "06")["epochs"] == 2
    for override, message in (("07.epochs=2", "parameter 07.epochs: 07_evaluation.ipynb declares no 'epochs'"),
                              ("6x.epochs=2", "parameter 6x.epochs: '6x' names no notebook"),
                              ("06.epochs=abc", "parameter 06_finetuning.epochs=abc: expected an integer"),
                              ("06.artifacts_dir=/x", "artifacts_dir is set by the runner")):
        with pytest.raises(UsageError, match=re.escape(message)):
            prepare(real_lessons(tmp_path, override))


def test_a_plain_key_with_different_defaults_in_the_selected_notebooks_is_refused(tmp_path: Path) -> None:
    """Issue 21: -p epochs=2 once turned two knobs (lesson 5's head epochs, lesson 6's fine-tuning
    epoch). A key declared with different defaults by selected notebooks is refused, naming them
    and the scoped forms; keys declared alike (seed, batch_size...) stay plain."""
    notebooks = tmp_path / "lessons"
    notebooks.mkdir()
    write_notebook(notebooks / "01_head.ipynb", ['artifacts_dir = "../artifacts"\nepochs = 6\nseed = 0', "pass"])
    write_notebook(notebooks / "02_tune.ipynb", ['artifacts_dir = "../artifacts"\nepochs = 1\nseed = 0', "pass"])
    (tmp_path / "none.yaml").write_text("parameters: {}\n")
    options = {"profile": str(tmp_path / "none.yaml"), "out": tmp_path / "report", "quiet": True,
               "notebooks_dir": notebooks}
    with pytest.raises(UsageError, match=re.escape(
            "parameter epochs is ambiguous: 01_head.ipynb (default 6), 02_tune.ipynb (default 1) declare "
            "it with different defaults; set it for one notebook: -p 01.epochs=... -p 02.epochs=...")):
        prepare(RunOptions(overrides=["epochs=2"], **options))
    ctx, _ = prepare(RunOptions(overrides=["epochs=2"], only=["02"], **options))  # one notebook: plain is fine
    assert received(ctx, "02")["epochs"] == 2
    ctx, _ = prepare(RunOptions(overrides=["seed=7", "01.epochs=3"], **options))
    assert (received(ctx, "01")["epochs"], received(ctx, "02")["seed"]) == (3, 7)


def test_every_name_means_one_thing_across_the_lessons(tmp_path: Path) -> None:
    """Issue 21: the real lessons declare no parameter with two meanings (two defaults), so a plain
    -p key always turns one knob; and every shipped profile runs with the lessons' declarations."""
    declared = declared_parameters(sorted(DEFAULT_NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb")))
    defaults: dict[str, set[str]] = {}
    for params in declared.values():
        for key, source in params.items():
            defaults.setdefault(key, set()).add(source)
    assert {key: sources for key, sources in defaults.items() if len(sources) > 1} == {}
    ctx, _ = prepare(real_lessons(tmp_path / "a", "seed=7", "batch_size=16", "learning_rate=1e-4"))
    assert {received(ctx, name)["batch_size"] for name in ("06", "09", "11")} == {16}
    for name in available_profiles():
        prepare(RunOptions(profile=name, out=tmp_path / name, quiet=True))


def test_a_value_reaching_no_selected_lesson_is_refused_before_the_run(tmp_path: Path) -> None:
    """Issue 22 row 9: -p strategy=mirrored with lessons 5 and 6 failed inside lesson 5. Lesson 11
    alone takes a strategy now; given to a run that leaves it out, the value would do nothing,
    so it is refused before anything runs, naming the lesson that takes it."""
    with pytest.raises(UsageError, match=re.escape(
            "parameter strategy reaches none of the selected notebooks (05_training, 06_finetuning); "
            "11_scaling_out declares it: select it (--only, --from, --until) or drop -p strategy")):
        prepare(real_lessons(tmp_path, "strategy=mirrored", start="05", stop="06"))
    with pytest.raises(UsageError, match="parameter 06.epochs reaches none of the selected notebooks"):
        prepare(real_lessons(tmp_path, "06.epochs=2", only=["05"]))
    ctx, _ = prepare(real_lessons(tmp_path, "strategy=mirrored", start="05", stop="11"))
    assert received(ctx, "11")["strategy"] == "mirrored" and "strategy" not in received(ctx, "06")
