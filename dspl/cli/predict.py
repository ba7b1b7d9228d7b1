"""`predict -md MODEL -d AUDIO_DIR [-hc HP] [-cc CLASSES]`."""

import click


@click.command("predict")
@click.option("-md", "--model-dir", "model", required=True,
              help="Model file (model.h5 or .ckpt); a glob such as 'out/models/*/*/model.h5' predicts with each.")
@click.option("-d", "--data-dir", "data_dir", required=True, type=click.Path(),
              help="Audio file, directory (searched recursively) or glob such as 'audio/*.wav'.")
@click.option("-hc", "--hyper-config", "hp_config", type=click.Path(), default=None,
              help="dspl models: optional, checked against the stored configuration; DeepSpectrumLite Keras models: required.")
@click.option("-cc", "--class-config", "class_config", type=click.Path(), default=None,
              help="dspl models: optional, checked against the stored classes; DeepSpectrumLite Keras models: required.")
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(min=1),
              help="Chunks per forward pass.")
def command(model: str, data_dir: str, hp_config: str | None, class_config: str | None, batch_size: int) -> None:
    """Predict every audio file under a directory with one or more models.

    Writes <model dir>/test/test/test.chunks.predictions.csv (filename,time,prob_<class>...,prediction)
    and test.grouped.predictions.csv (per file: mean scores and decision).
    """
    from dspl.workflows.predict import predict

    for path in predict(model, data_dir, hp_config, class_config, batch_size=batch_size):
        click.echo(str(path))
