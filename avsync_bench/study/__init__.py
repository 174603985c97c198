"""A human preference study of generated videos (issue #14; the paper's Table 1 user study).

Modules: :mod:`~avsync_bench.study.models` (database, migrations), :mod:`~.assignment`
(balanced seeded deal), :mod:`~.store` (create, invite, close, export), :mod:`~.app` (the web
app), :mod:`~.analysis` and :mod:`~.render` (statistics, tables). Needs the ``study`` extra.
"""
