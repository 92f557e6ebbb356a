"""Everything people look at: PNG panels, loss curves and sample grids, and the HTML run report ``RUN/report.html``.

Pictures (PNG, written atomically): ``panels.py`` (source | prediction | target | |error| slices, the |error| column
on one fixed scale per figure with its colour bar), ``curves.py`` (loss curves; matplotlib imported only there, when
drawing), ``grids.py`` (sample grids of noise/class runs).

The report: ``write_html_report(run_dir)`` reads only the run folder's files (configuration, split, CSV logs,
curves, panels, evaluation JSON; never a checkpoint) and writes one page with every image embedded, inline style, no
script and no external reference. ``pix2gan report`` writes it; ``pix2gan eval`` and the end of training write it
again. Files: ``page.py`` (the sections and :func:`write_html_report`), ``run_files.py`` (what a run folder holds,
where ``eval`` keeps its figures), ``numbers.py`` (metrics formatted as ``pix2gan eval`` prints them), ``html.py``
(escaped tables, embedded images, the style sheet).
"""

from pix2gan.reporting.numbers import format_gan_metric, format_mean_std, format_metric, paired_columns, rules_line
from pix2gan.reporting.page import REPORT_NAME, config_value, render_html_report, write_html_report
from pix2gan.reporting.run_files import eval_json_path, read_run

__all__ = ["write_html_report", "render_html_report", "eval_json_path", "read_run", "REPORT_NAME", "format_metric",
           "format_mean_std", "format_gan_metric", "paired_columns", "rules_line", "config_value"]  # fmt: skip
