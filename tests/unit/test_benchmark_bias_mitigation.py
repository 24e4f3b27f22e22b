"""benchmarks/bias_mitigation.py takes its defaults from lesson 9's parameters cell, not a copy."""

from __future__ import annotations

import json
import sys

from conftest import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT / "benchmarks"))
import bias_mitigation  # noqa: E402


def test_the_variants_default_to_lesson_9s_recipe_as_its_cell_says(tmp_path):
    """An edit to the lesson's cell is what the benchmark runs next (it restated the recipe, and
    had to be edited beside the lesson)."""
    shipped = bias_mitigation.lesson_9_recipe()
    assert bias_mitigation.default_variant(shipped)["seeds"] == shipped["mitigation_seeds"][:1]

    content = json.loads((PROJECT_ROOT / "notebooks" / "09_bias.ipynb").read_text())
    cell = next(cell for cell in content["cells"] if "parameters" in cell["metadata"].get("tags", []))
    source = "".join(cell["source"])
    edits = {"mitigation_learning_rate": "3e-5", "mitigation_tokens_per_batch": "512", "template_rows": "1500"}
    for name, value in edits.items():
        line = next(line for line in source.splitlines() if line.startswith(f"{name} = "))
        source = source.replace(line, f"{name} = {value}")
    cell["source"] = source
    edited = tmp_path / "09_bias.ipynb"
    edited.write_text(json.dumps(content))

    recipe = bias_mitigation.lesson_9_recipe(edited)
    variant = bias_mitigation.default_variant(recipe)
    assert (variant["learning_rate"], variant["tokens_per_batch"], recipe["template_rows"]) == (3e-5, 512, 1500)
    assert {key: value for key, value in recipe.items() if key not in edits} == \
        {key: value for key, value in shipped.items() if key not in edits}  # the rest as shipped
