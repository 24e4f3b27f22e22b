"""Checking a run's parameter values before the first lesson starts.

``toxhelpers run`` takes values from profiles, config files and ``-p key=value``, all read as
YAML 1.1, which has traps: ``2e-5`` is text (YAML 1.1 wants ``2.0e-5``), ``no`` is False. A value
that slipped through used to fail minutes later, inside a lesson, after earlier lessons ran. So
each value is checked here, before anything runs:

- against the **type of the notebooks' default** (their ``parameters`` cells, read with
  ``ast.literal_eval``): an int key takes whole numbers (not ``true``); a float key takes any
  number, also text that reads as one (``2e-5``); a text key takes text, and for ``-p`` exactly
  what was typed (``-p label_rule=no`` is ``"no"``, not False); a list key takes a list whose
  items fit the default's items; a key whose default is None says its type in that table;
- against the **range or choices** in :func:`parameter_rules`, the one table of what each parameter
  accepts (numbers in a list, e.g. every learning rate of a grid, are each checked);
- ``max_length`` and ``benchmark_length`` against the encoder's ``max_position_embeddings``
  (:func:`check_encoder_limit`).

Anything the table does not say (e.g. which poolings or augmentation methods exist) is checked by
the lesson that uses it, with its own message.
"""

from __future__ import annotations

import ast
import functools
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ANY_NUMBER = (int, float)


class ParameterError(ValueError):
    """A parameter value the lessons cannot use: one line naming the key, the value and what was expected."""


@dataclass(frozen=True)
class Kind:
    """The type a value must have: one or more of bool, int, float, str, list (with its items' kind)."""

    types: tuple[type, ...]
    item: Kind | None = None  # the kind of a list's items; None: any item

    def describe(self) -> str:
        names = {bool: "true or false", int: "an integer", float: "a number", str: "text"}
        words = [names[kind] for kind in self.types if kind in names]
        if list in self.types:
            words.append(f"a list of {_plural(self.item.describe())}" if self.item else "a list")
        return " or ".join(words)


def _plural(description: str) -> str:
    """'an integer' -> 'integers', 'a list of integers' -> 'lists of integers' (for list items)."""
    words = {"an integer": "integers", "a number": "numbers", "text": "texts", "true or false": "true/false values"}
    for singular, plural in words.items():
        if description.startswith(singular):
            return plural + description[len(singular):]
    return description.replace("a list", "lists", 1)


@dataclass(frozen=True)
class Rule:
    """What one parameter accepts beyond its default's type. Bounds apply to every number in the
    value (all items of a list, of lists of lists), choices to every text."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False  # the bound itself is excluded: a learning rate must be > 0
    high_open: bool = False
    choices: tuple[str, ...] = ()
    optional: bool = False  # None is accepted too (e.g. "no limit")
    kind: Kind | None = None  # the type, when the notebooks' default (None) does not say it
    min_items: int = 0  # a list value needs at least this many items
    distinct: bool = False  # a list value may not repeat an item (a grid, a set of seeds)
    increasing: bool = False  # a list value's items strictly increase (bucket edges, label counts)

    def describe_items(self) -> str:
        """What a list value must look like beyond its items' range: "(at least 2 items, ...)"."""
        words = []
        if self.min_items:
            words.append("at least one item" if self.min_items == 1 else f"at least {self.min_items} items")
        if self.increasing:
            words.append("in increasing order")
        elif self.distinct:
            words.append("no item twice")
        return f" ({', '.join(words)})" if words else ""

    def admits_items(self, items: list[Any]) -> bool:
        if len(items) < self.min_items:
            return False
        keys = [repr(item) for item in items]
        if (self.distinct or self.increasing) and len(set(keys)) < len(keys):
            return False
        return not self.increasing or all(a < b for a, b in zip(items, items[1:]))

    def describe_range(self) -> str:
        if self.low is not None and self.high is not None:
            return f"in {'(' if self.low_open else '['}{_number(self.low)}, {_number(self.high)}{')' if self.high_open else ']'}"
        if self.low is not None:
            return f"{'>' if self.low_open else '>='} {_number(self.low)}"
        if self.high is not None:
            return f"{'<' if self.high_open else '<='} {_number(self.high)}"
        return ""

    def admits(self, number: float) -> bool:
        above = self.low is None or (number > self.low if self.low_open else number >= self.low)
        below = self.high is None or (number < self.high if self.high_open else number <= self.high)
        return above and below


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


INTEGER, NUMBER, TEXT = Kind((int,)), Kind((float,)), Kind((str,))
# Upper bounds: none of these is a limit a lesson could reach; each stops a typo (1e9, an extra
# zero) from running for hours or filling memory before anything says so.
MANY_ROWS = 10_000_000  # more rows than any Jigsaw file has (train.csv: 159,571)
MANY_STEPS = 100_000  # timed steps, repeats, resamples, draws
SOME = 1_000  # examples shown, bins, epochs
LEARNING_RATE = Rule(low=0, high=1, low_open=True)
SHARE = Rule(low=0, high=1, low_open=True, high_open=True)  # strictly between 0 and 1
DROPOUT = Rule(low=0, high=1, high_open=True)
LAYER_SIZES = Rule(low=1, high=65_536)
ROWS, STEPS, FEW = Rule(low=0, high=MANY_ROWS), Rule(low=0, high=MANY_STEPS), Rule(low=0, high=SOME)
# model.POOLINGS, spelled out here because model imports TensorFlow (a test keeps them equal)
POOLINGS = ("cls", "mean")
# the ONNX operator sets the exporter (tf2onnx 1.16) and ONNX Runtime both handle
ONNX_OPSETS = (13, 18)
PATH_SUFFIXES = ("_dir", "_path", "_file")  # parameters naming a file or folder
# training.SCHEDULES, spelled out here because training imports TensorFlow (a test keeps them equal)
LEARNING_RATE_SCHEDULES = ("constant", "linear")
# training.HEAD_CHOICES, spelled out here for the same reason (a test keeps them equal)
HEAD_CHOICES = ("lesson 4", "grid")
# confidence.SCALINGS, spelled out here for the same reason (a test keeps them equal)
CALIBRATION_SCALINGS = ("temperature", "platt")
SEQUENCE_LENGTH_KEYS = ("max_length", "benchmark_length")  # capped by the encoder, see check_encoder_limit
CHECKPOINT_KEY = "checkpoint"


@functools.cache
def parameter_rules() -> dict[str, Rule]:
    """The one table of parameter ranges and choices (built on first use: the choices come from
    the modules that define them, which import pandas)."""
    from toxhelpers import batches, data, distribute, tokenization

    return {
        # 01_data
        "data_dir": Rule(kind=TEXT, optional=True),
        "label_rule": Rule(choices=data.LABEL_RULES),
        "train_rows": Rule(choices=data.TRAIN_ROW_CHOICES),
        "validation_fraction": SHARE,
        "target_toxic_share": SHARE,
        "max_train_rows": Rule(kind=INTEGER, optional=True, low=2, high=MANY_ROWS),  # a stratified sample: a row per class
        "max_test_rows": Rule(kind=INTEGER, optional=True, low=2, high=MANY_ROWS),
        "seed": Rule(low=0, high=2**32 - 1),  # what numpy and scikit-learn accept
        # 02_augmentation
        "aug_p": Rule(low=0, high=1, low_open=True),
        "augment_target": Rule(kind=Kind((str, float)), choices=("balanced",), low=0, high=1,
                               low_open=True, high_open=True),
        "variants_per_row": Rule(kind=INTEGER, optional=True, low=1, high=SOME),
        "max_augmented_rows": Rule(kind=INTEGER, optional=True, low=0, high=MANY_ROWS),
        "compare_rows": Rule(low=1, high=MANY_STEPS),
        "example_rows": FEW,
        # 03_tokenization (the upper bound of sequence lengths is the encoder's)
        "max_length": Rule(low=2),  # [CLS] and [SEP]
        "throughput_rows": Rule(low=1, high=MANY_ROWS),
        # 04_model, 05_training, 06_finetuning
        "head_sizes": LAYER_SIZES,
        "head_dropout": DROPOUT,
        "encoder_dropout": DROPOUT,
        "attention_dropout": DROPOUT,
        "focal_gamma": Rule(low=0, high=100),
        "focal_alpha": Rule(low=0, high=1),
        "learning_rate": LEARNING_RATE,
        "training_set": Rule(choices=tokenization.TRAINING_SETS),
        "head_learning_rate": LEARNING_RATE,
        "head_epochs": Rule(low=1, high=SOME),
        "head_patience": FEW,
        "head_batch_size": LAYER_SIZES,
        "head_choice": Rule(choices=HEAD_CHOICES),
        "epochs": Rule(low=1, high=SOME),
        "patience": FEW,
        "batch_size": LAYER_SIZES,
        "grid_poolings": Rule(choices=POOLINGS, min_items=1, distinct=True),
        "grid_learning_rates": Rule(low=0, high=1, low_open=True, min_items=1, distinct=True),
        "grid_head_sizes": Rule(low=1, high=65_536, min_items=1, distinct=True),
        "time_uncached_batches": STEPS,
        "transplant_check_rows": Rule(low=1, high=MANY_ROWS),
        "padding": Rule(choices=batches.PADDINGS),
        "schedule": Rule(choices=LEARNING_RATE_SCHEDULES),
        "warmup_fraction": Rule(low=0, high=1, high_open=True),
        "tokens_per_batch": Rule(kind=INTEGER, optional=True, low=2, high=MANY_ROWS),  # and >= max_length, checked in lessons 6 and 11
        "compare_padding_batches": STEPS,
        "new_comments": Rule(min_items=1),
        "checkpoint_every": STEPS,  # training steps between saves of an interruptible fit (lessons 5, 6 and 12); 0: never
        # 11_scaling_out
        "strategy": Rule(choices=distribute.STRATEGIES),
        "precision": Rule(choices=distribute.PRECISIONS),
        "scaling_rows": ROWS,  # 0: every training row
        # 07_evaluation
        "tfidf_C_grid": Rule(low=0, high=1e6, low_open=True, min_items=1, distinct=True),
        "target_recall": Rule(low=0, high=1, low_open=True),
        "natural_prevalence": SHARE,
        "prevalence_draws": Rule(low=1, high=MANY_STEPS),
        "length_edges": Rule(low=1, high=MANY_STEPS, min_items=1, increasing=True),
        "error_examples": FEW,
        # 08_serving
        "onnx_opset": Rule(low=ONNX_OPSETS[0], high=ONNX_OPSETS[1]),
        "onnx_threads": Rule(low=0, high=1024),
        "benchmark_length": Rule(low=2),
        "benchmark_batch_sizes": Rule(low=1, high=65_536, min_items=1, distinct=True),
        "latency_repeats": Rule(low=1, high=MANY_STEPS),
        "agreement_rows": ROWS,
        "long_comment_rows": ROWS,
        "serving_comments": Rule(min_items=2),  # the second one is also shown hidden late in a long comment
        # 09_bias
        "templates_dir": Rule(kind=TEXT, optional=True),  # None: the templates shipped with the package
        "template_rows": Rule(kind=INTEGER, optional=True, low=100, high=MANY_ROWS),  # enough rows for both classes of every term
        "held_out_fraction": SHARE,
        "plain_sentences": Rule(kind=Kind((list,), TEXT), min_items=1),
        "replay_rows": ROWS,
        # identity sentences per run, half of them toxic; the exact limit (2 x frames x train-side
        # terms) depends on the terms and is checked by the lesson
        "mitigation_sentences": Rule(low=2, high=MANY_STEPS),
        "mitigation_seeds": Rule(kind=Kind((list,), INTEGER), low=0, high=2**32 - 1, min_items=1,
                                 distinct=True),  # one run per seed, weights averaged
        "mitigation_learning_rate": LEARNING_RATE,
        "max_validation_auc_cost": Rule(low=0, high=1),
        # 10_confidence
        "scaling": Rule(choices=CALIBRATION_SCALINGS),
        "calibration_bins": Rule(low=1, high=SOME),
        "label_counts": Rule(low=0, high=MANY_ROWS, min_items=1, increasing=True),  # 0: the threshold chosen without labels
        "label_repeats": Rule(low=1, high=MANY_STEPS),
        "bootstrap_resamples": Rule(low=200, high=MANY_STEPS),  # fewer make the interval ends (2.5% tails) too noisy to report
        "attribution_examples": FEW,
        "ig_steps": Rule(low=1, high=MANY_STEPS),
        "ig_tolerance": Rule(low=0, high=1, low_open=True),
        # 12_keras_hub
        "encoder_dir": Rule(kind=TEXT, optional=True),  # None: the encoder lesson 3 tokenized for
        "keras_hub_train_rows": ROWS,  # 0: all of lesson 6's training rows
        "tokenizer_check_rows": ROWS,  # 0: all validation rows
    }


# ---------------------------------------------------------------------------------- types


def notebook_defaults(declared: Mapping[str, Mapping[str, str]]) -> dict[str, list[Any]]:
    """{parameter: its default in each notebook declaring it}, from the defaults' source text.
    A default that is not a plain literal (an expression) is left out: its type is unknown."""
    defaults: dict[str, list[Any]] = {}
    for params in declared.values():
        for key, source in params.items():
            try:
                defaults.setdefault(key, []).append(ast.literal_eval(source))
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                defaults.setdefault(key, [])
    return defaults


def kind_of(value: Any) -> Kind | None:
    """The kind a default value stands for (None for None: it says nothing)."""
    if value is None:
        return None
    if isinstance(value, list):
        return Kind((list,), merge_kinds([kind_of(item) for item in value]))
    return Kind((type(value),)) if type(value) in (bool, int, float, str) else None


def merge_kinds(kinds: list[Kind | None]) -> Kind | None:
    """One kind for several defaults of a key (or items of a list): an int and a float make a
    float; anything else that disagrees gives None (no type check rather than a wrong one)."""
    known = [kind for kind in kinds if kind is not None]
    if not known:
        return None
    types = {kind.types for kind in known}
    if types <= {(int,), (float,)}:
        return NUMBER if (float,) in types else INTEGER
    if types == {(list,)}:
        return Kind((list,), merge_kinds([kind.item for kind in known]))
    return known[0] if len(types) == 1 else None


class _Mismatch(Exception):
    """A value that does not fit its kind (turned into a ParameterError naming the key)."""


def coerce(value: Any, kind: Kind | None, typed: str | None = None) -> Any:
    """``value`` as ``kind`` wants it, or _Mismatch. ``typed`` is the text given with ``-p``:
    used for a text parameter when YAML made something else of it (``no`` -> False)."""
    if kind is None:
        return value
    if bool in kind.types and isinstance(value, bool):
        return value
    if int in kind.types and isinstance(value, int) and not isinstance(value, bool):
        return value
    if float in kind.types:
        number = _as_number(value)
        if number is not None:
            return number
    if str in kind.types:
        if isinstance(value, str):
            return value
        if typed is not None and not isinstance(value, (list, dict)):
            return typed  # YAML's bool, number or date: the user typed text
    if list in kind.types and isinstance(value, list):
        return [coerce(item, kind.item) for item in value]
    raise _Mismatch


def _as_number(value: Any) -> float | None:
    """A finite float from a number or from text like ``2e-5``; None when it is neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, ANY_NUMBER):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


# ---------------------------------------------------------------------------------- checks


def expected(kind: Kind | None, rule: Rule) -> str:
    """What a key accepts, in words: "an integer >= 1", "one of 'toxic', 'any'", ..."""
    words = []
    if rule.choices and kind and kind.types == (list,):
        return f"a list of items from {', '.join(map(repr, rule.choices))}{rule.describe_items()}"
    if rule.choices:
        words.append("one of " + ", ".join(map(repr, rule.choices)))
    types = tuple(type_ for type_ in kind.types if not (rule.choices and type_ is str)) if kind else ()
    if types:
        words.append(f"{Kind(types, kind.item).describe()} {rule.describe_range()}".strip())
    if kind and list in kind.types and words:
        words[-1] += rule.describe_items()
    if rule.optional:
        words.append("null (None)")
    return " or ".join(words) or "any value"


def _leaves(value: Any) -> list[Any]:
    """The numbers and texts inside a value (list items, recursively)."""
    if isinstance(value, list):
        return [leaf for item in value for leaf in _leaves(item)]
    return [value]


def check_value(key: str, value: Any, kind: Kind | None, rule: Rule, typed: str | None = None) -> Any:
    """The value coerced to its kind and checked against its rule, or a ParameterError."""
    shown = typed if typed is not None else repr(value)
    failure = ParameterError(f"parameter {key}={shown}: expected {expected(kind, rule)}")
    if value is None:
        if rule.optional or kind is None:
            return None
        raise failure
    try:
        checked = coerce(value, kind, typed)
    except _Mismatch:
        raise failure from None
    if isinstance(checked, list) and not rule.admits_items(checked):
        raise failure
    if key.endswith(PATH_SUFFIXES) and isinstance(checked, str) and not checked.strip():
        raise ParameterError(f"parameter {key}={shown}: expected a path (an empty one would silently fall back "
                             "to the default)" + (" or null (None)" if rule.optional else ""))
    for leaf in _leaves(checked):
        if isinstance(leaf, str) and rule.choices and leaf not in rule.choices:
            raise failure
        if isinstance(leaf, ANY_NUMBER) and not isinstance(leaf, bool) and not rule.admits(leaf):
            raise failure
    return checked


def checked_values(values: Mapping[str, Any], declared: Mapping[str, Mapping[str, str]],
                   typed: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Every value coerced to the type of its notebooks' default and checked against
    :func:`parameter_rules`; ``typed`` holds the text of each ``-p`` value as given."""
    rules = parameter_rules()
    checked = {}
    for key, value in values.items():
        scope, _, name = key.rpartition(".")  # a scoped key (06_finetuning.epochs): that notebook's default
        declaring = {notebook: params for notebook, params in declared.items()
                     if not scope or notebook.removesuffix(".ipynb") == scope}
        rule = rules.get(name, Rule())
        kind = rule.kind or merge_kinds([kind_of(default) for default in notebook_defaults(declaring).get(name, [])])
        checked[key] = check_value(key, value, kind, rule, (typed or {}).get(key))
    return checked


def check_folders(values: Mapping[str, Any]) -> None:
    """Folder parameters (``*_dir``, already made absolute) must name an existing folder: a
    missing ``templates_dir`` used to fail only in lesson 9, after everything before it ran."""
    for key, value in values.items():
        if key.endswith("_dir") and isinstance(value, str) and not os.path.isdir(value):
            raise ParameterError(f"parameter {key}={value}: "
                                 f"{'not a folder' if os.path.exists(value) else 'no such folder'}; "
                                 "expected an existing folder")


def check_encoder_limit(values: Mapping[str, Any], declared: Mapping[str, Mapping[str, str]]) -> None:
    """Sequence lengths given for the run must fit the encoder: at most its
    ``max_position_embeddings`` (a longer input has no position vectors and only wastes memory)."""
    given = {key: value for key, value in values.items()
             if key.rpartition(".")[2] in SEQUENCE_LENGTH_KEYS and isinstance(value, int)}
    if not given:
        return
    from toxhelpers import pretrained

    checkpoint = values.get(CHECKPOINT_KEY)
    if checkpoint is None:
        checkpoint = next(iter(notebook_defaults(declared).get(CHECKPOINT_KEY, [])), pretrained.DEFAULT_CHECKPOINT)
    try:
        limit, origin = pretrained.encoder_positions(str(checkpoint))
    except (OSError, ValueError) as error:
        raise ParameterError(f"parameter {CHECKPOINT_KEY}={checkpoint!r}: {error}") from None
    for key, length in given.items():
        if length > limit:
            raise ParameterError(f"parameter {key}={length}: expected at most {limit}, {origin}")
