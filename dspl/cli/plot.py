"""`plot -hc HP -d FILE_OR_DIR -o OUT [--format png|npy] [--config-index I]`."""

import click

from dspl.cli.options import audio_input_option, input_file, output_dir_option


@click.command("plot")
@click.option("-hc", "--hyper-config", "hp_config", required=True, type=click.Path(),
              callback=input_file("hyper-parameter config"),
              help="Hyper-parameter grid (JSON of lists).")
@audio_input_option
@output_dir_option
@click.option("--format", "fmt", type=click.Choice(["png", "npy"]), default="png", show_default=True,
              help="png: uint8 RGB; npy: float32 H×W×3 on 0..255 (H×W×1 raw features without plots).")
@click.option("--config-index", default=0, show_default=True, type=int,
              help="Which configuration of the grid to plot.")
def command(hp_config: str, data: str, output: str, fmt: str, config_index: int) -> None:
    """Write the spectrogram plot of every chunk of audio files as PNG or NPY.

    Writes <stem>_<chunk>.png or .npy per chunk, plus contact_sheet.png. Files keep their sub-folder of -d;
    files of one folder that share a name apart from the extension (a.wav, a.flac) keep the extension in their
    output names (a.wav_0.png, a.flac_0.png), so that no output overwrites another.
    """
    from dspl.config import load_config
    from dspl.workflows.plot import plot_audio

    summary = plot_audio(load_config(hp_config, config_index).spec, data, output, fmt)
    click.echo(f"{summary.images} image(s) of {summary.files} file(s) in {output}; "
               f"contact sheet {summary.contact_sheet}")
    if summary.skipped:
        click.echo(f"skipped {len(summary.skipped)} file(s):", err=True)
        for reason in summary.skipped:
            click.echo(f"  {reason}", err=True)
