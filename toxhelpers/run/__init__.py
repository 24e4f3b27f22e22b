"""The run tooling behind ``python -m toxhelpers run``: not part of the lessons.

The lessons import the helper modules next to this package (``toxhelpers.data``,
``toxhelpers.model``, ...); none of them imports ``toxhelpers.run``. This package executes the
lesson notebooks headless, in order, into one report folder, and decides which notebooks a rerun
can skip. Because it never shapes a lesson's results, its code is left out of the code hash that
decides whether a notebook must rerun (:func:`toxhelpers.run.package_code.code_hash`): changing the
tooling never forces the lessons to run again.

One module per job, in the order a run uses them:

- :mod:`~toxhelpers.run.cli`: the command line, its documentation (``--help``) and exit statuses
- :mod:`~toxhelpers.run.orchestrate`: prepare, then run or reuse each selected notebook
- :mod:`~toxhelpers.run.parameters`: profiles, config files, ``-p key=value``, declared parameters
- :mod:`~toxhelpers.run.checks`: each parameter value checked before the first notebook starts
- :mod:`~toxhelpers.run.notebooks`: which notebooks exist and which are selected
- :mod:`~toxhelpers.run.run_folder`: the report folder's layout and its one-run-at-a-time lock
- :mod:`~toxhelpers.run.resume`: hashing, manifests and the decision to reuse a notebook
- :mod:`~toxhelpers.run.package_code`: the package code a notebook reaches, and its hash
- :mod:`~toxhelpers.run.execute`: one notebook through papermill, its failure, its HTML
- :mod:`~toxhelpers.run.progress`: what the terminal shows while notebooks run
- :mod:`~toxhelpers.run.peak_memory`: the most memory a notebook's kernel held
- :mod:`~toxhelpers.run.summary`: run.json, metrics.json, summary.md and the final table
- :mod:`~toxhelpers.run.compare`: ``--compare-to`` and ``--tolerance``
- :mod:`~toxhelpers.run.finetune`: ``toxhelpers finetune``, lesson 11 as one process of a run
- :mod:`~toxhelpers.run.ray_engine`: ``--engine ray``, lesson 11 as N workers Ray Train starts
- :mod:`~toxhelpers.run.errors`: the one error type that is the user's to fix
"""
