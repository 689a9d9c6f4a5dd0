"""``bali report``: the paper's result tables (Markdown, LaTeX, CSV) and plots from results
JSONs and pretraining runs, next to the published numbers of the paper.

Modules: :mod:`~bali.report.paper` (published numbers), :mod:`~bali.report.tables` (table
building and rendering), :mod:`~bali.report.plots` (PNG plots), :mod:`~bali.report.commands`
(the CLI and the report page).
"""
