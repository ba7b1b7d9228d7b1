"""Click options that several commands share, each defined once."""

from __future__ import annotations

import click

whole_file_seconds_option = click.option(
    "--whole-file-seconds", type=click.FloatRange(min=0, min_open=True),
    help="Whole-file configs (chunk_size <= 0): the preprocessor's fixed input length in seconds. Without it the "
         "input takes any length where TFLite has the resize built in (resize_method nearest, or bilinear without "
         "anti_alias); other methods default to the longest calibration file.")
