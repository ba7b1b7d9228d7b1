"""The five parts of one configuration, each a frozen dataclass whose fields are hyper-parameter keys.

Every key DeepSpectrumLite documented, plus dspl's few additions (marked "dspl:" in their help), belongs to one
part: where a run's outputs go and how its labels are read (`ExperimentSettings`), the network
(`ModelSettings`), the optimisation (`TrainingSettings`), "chunk -> plot" (`PreprocessingSettings`, which also
gives the `PreprocessingSpec` in samples and pixels) and the training-time augmentation (`AugmentSettings`).
Field order is the schema's order. A part checks its values when it is built (dspl.config.keys.Settings).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from dspl.config.keys import (
    ConfigError,
    Settings,
    below_one,
    in_range,
    non_negative,
    open_unit_interval,
    path_component,
    positive,
    setting,
    unit_interval,
)
from dspl.spec import COLOR_MAPS, RESIZE_METHODS, PreprocessingSpec

OPTIMIZERS = ("adam", "adadelta", "sgd", "adagrad", "ftrl", "nadam", "rmsprop")
PREDICTION_TYPES = ("categorical", "regression")
LR_DECAYS = ("none", "cosine")

# Upper limits. Those of sizes and counts lie far above every value DeepSpectrumLite's configs use, and below values
# that would exhaust memory with a traceback from torch or numpy, or slow a run a hundredfold without a word.
MAX_IMAGE_SIDE = 2048
"""Largest image_width and image_height in pixels: far above what image backbones are trained on (224 to 600),
below sizes whose plots, training and reports would run for hours or exhaust memory unannounced."""
MAX_SEED = 2**32 - 1
"""Largest seed: numpy's random generators, which Lightning seeds too, take 0 .. 2**32 - 1."""
MAX_UNITS = 65536
"""Largest num_units (the head's dense layer): 128 times DeepSpectrumLite's 512; 10**10 units asked torch for
40 TB."""
MAX_BATCH_SIZE = 65536
"""Largest batch_size: 65536 plots of 224 x 224 are 39 GB already; 10**30 failed inside torch's batch sampler."""
MAX_EPOCHS = 100_000
"""Largest epochs and pre_epochs: 1000 times DeepSpectrumLite's 100; a larger count is a run that never ends."""
MAX_SAMPLE_RATE = 768_000
"""Largest sample_rate in hertz: the highest PCM rate in use; 10**10 made numpy allocate 76 GiB for the mel matrix."""
MAX_SECONDS = 600
"""Longest chunk_size, chunk_hop_size and STFT window, hop and FFT length in seconds: ten minutes, 150 times
DeepSpectrumLite's 4 s chunks (longer recordings are taken whole with chunk_size <= 0); a chunk of 10**9 s made the
resize matrix 14.6 TiB."""
MAX_FFT_SAMPLES = 2**17
"""Longest STFT FFT (stft_fft_length x sample_rate, so also the window) in samples: DeepSpectrumLite's longest,
0.128 s, at 768 kHz fits; the mel matrix grows with it, the export's DFT matrix with its square."""
MAX_MEL_BINS = 1024
"""Largest num_mel_bins: 8 times DeepSpectrumLite's 128; 100000 bins trained 100 times slower without a word."""
MAX_CEP_LIFTER = 10_000
"""Largest cep_lifter: HTK's customary one is 22; far above num_mfccs the lifter 1 + (L/2)·sin(πn/L) barely changes
(it tends to 1 + πn/2), and beyond 1e308 it failed converting L to a float."""
MAX_MASKS = MAX_IMAGE_SIDE
"""Largest specaug_freq_mask_num and specaug_time_mask_num: more masks than a plot side has pixels would each be
narrower than one; torch allocates batch x masks x side for them."""

image_side = in_range("a whole number of pixels", MAX_IMAGE_SIDE, 1)
"""The range check of image_width and image_height."""
epoch_count = in_range("a whole number", MAX_EPOCHS, 0)
"""The range check of epochs and pre_epochs."""
stft_seconds = in_range("a number of seconds", MAX_SECONDS, 0, above_low=True)
"""The range check of the STFT's window, hop and FFT length."""
mask_count = in_range("a whole number", MAX_MASKS, 0)
"""The range check of the number of SpecAugment masks on each axis."""


def chunk_seconds(v: float) -> str | None:
    """The range check of chunk_size: at most MAX_SECONDS, and 0 or less takes each file whole."""
    return None if v <= MAX_SECONDS else f"a number of seconds up to {MAX_SECONDS} (0 or less: each file whole)"


def seed_range(v: int) -> str | None:
    """The range check of seed: a value numpy takes (see MAX_SEED), so no run fails on it after loading its data."""
    return None if 0 <= v <= MAX_SEED else f"an integer from 0 to {MAX_SEED} (2**32 - 1, numpy's range)"


@dataclass(frozen=True, kw_only=True)
class ExperimentSettings(Settings):
    """Where a run's outputs go (`<md>/{logs,models}/<tb_experiment>/<tb_run_id>_config_<i>`) and its label parser."""

    label_parser: str = setting(help="label parser: 'file.py:Class' or the built-in ComParE parser")
    tb_experiment: str = setting(check=path_component, help="folder name of the experiment under logs/ and models/")
    tb_run_id: str = setting(check=path_component, help="folder name prefix of each configuration's run")


@dataclass(frozen=True, kw_only=True)
class ModelSettings(Settings):
    """The network: a backbone, DeepSpectrumLite's head (dense, activation, dropout, output) and what it predicts."""

    prediction_type: str = setting("categorical", choices=PREDICTION_TYPES)
    model_name: str = setting("TransferBaseModel", choices=("TransferBaseModel",))
    basemodel_name: str = setting(help="DeepSpectrumLite backbone name or any timm model name")
    weights: str = setting("imagenet", help="'imagenet', '' (random init) or a path to a weights file")
    num_units: int = setting(check=in_range("a whole number", MAX_UNITS, 1))
    dropout: float = setting(check=below_one)
    activation: str = setting()
    output_activation: str | None = setting(None, help="null: softmax for categorical, linear for regression")

    @property
    def categorical(self) -> bool:
        return self.prediction_type == "categorical"

    @property
    def pretrained(self) -> bool:
        """Whether the backbone starts from weights ('imagenet' or a file): DeepSpectrumLite's schedule applies."""
        return self.weights != ""


@dataclass(frozen=True, kw_only=True)
class TrainingSettings(Settings):
    """The optimisation: optimizer, loss, learning rates and DeepSpectrumLite's two-phase schedule, batches, seed."""

    optimizer: str = setting(choices=OPTIMIZERS)
    learning_rate: float = setting(check=positive)
    fine_learning_rate: float | None = setting(None, check=non_negative,
                                               help="learning rate after pre_epochs; null or 0 keeps learning_rate")
    lr_decay: str = setting("none", choices=LR_DECAYS,
                            help="dspl: 'cosine' decays each phase's learning rate along a half cosine over its epochs")
    finetune_layer: float = setting(check=unit_interval)
    loss: str = setting()
    pre_epochs: int = setting(check=epoch_count)
    epochs: int = setting(0, check=epoch_count)
    batch_size: int = setting(check=in_range("a whole number", MAX_BATCH_SIZE, 1))
    seed: int = setting(42, check=seed_range, help="dspl: random seed of the run")

    @property
    def total_epochs(self) -> int:
        """Epochs of the whole run: pre_epochs (frozen backbone, or from scratch) plus epochs."""
        return self.pre_epochs + self.epochs


@dataclass(frozen=True, kw_only=True)
class PreprocessingSettings(Settings):
    """What turns a chunk of audio into a plot, as the user writes it (seconds, hertz); `spec` has it in samples."""

    sample_rate: int = setting(check=in_range("a whole number of hertz", MAX_SAMPLE_RATE, 1))
    normalize_audio: bool = setting(False)
    chunk_size: float = setting(check=chunk_seconds, help="seconds; <= 0 takes each file whole")
    chunk_hop_size: float = setting(check=in_range("a number of seconds", MAX_SECONDS))
    stft_window_size: float = setting(check=stft_seconds)
    stft_hop_size: float = setting(check=stft_seconds)
    stft_fft_length: float = setting(check=stft_seconds)
    mel_scale: bool = setting()
    lower_edge_hertz: float = setting(check=non_negative)
    upper_edge_hertz: float = setting(check=positive)
    num_mel_bins: int = setting(128, check=in_range("a whole number", MAX_MEL_BINS, 1))
    num_mfccs: int = setting(0, check=non_negative)
    cep_lifter: int = setting(check=in_range("a whole number", MAX_CEP_LIFTER, 0))
    db_scale: bool = setting()
    top_db: float | None = setting(
        None, check=positive, help="dspl: dB features floor at this many dB below each chunk's peak; null: no floor")
    use_plot_images: bool = setting()
    color_map: str = setting(choices=COLOR_MAPS)
    image_width: int = setting(check=image_side)
    image_height: int = setting(check=image_side)
    anti_alias: bool = setting(True)
    resize_method: str = setting("bilinear", choices=RESIZE_METHODS)

    @cached_property
    def spec(self) -> PreprocessingSpec:
        """These settings in samples and pixels (a ConfigError when a size comes out below one sample)."""
        rate = self.sample_rate
        chunk = hop = 0
        if self.chunk_size > 0:
            chunk, hop = int(self.chunk_size * rate), int(self.chunk_hop_size * rate)
            if chunk < 1:
                raise ConfigError(f"chunk_size: value {self.chunk_size} gives 0 samples at sample_rate {rate}")
            if hop < 1:
                raise ConfigError(f"chunk_hop_size: value {self.chunk_hop_size} gives 0 samples at sample_rate {rate}")
        frame_length = int(self.stft_window_size * rate)
        if 0 < chunk < frame_length:
            raise ConfigError(
                f"chunk_size: value {self.chunk_size} gives {chunk} samples, fewer than one STFT window "
                f"(stft_window_size {self.stft_window_size} = {frame_length} samples)")
        return PreprocessingSpec(
            sample_rate=rate, normalize_audio=self.normalize_audio, chunk_samples=chunk, hop_samples=hop,
            frame_length=frame_length, frame_step=int(self.stft_hop_size * rate),
            fft_length=int(self.stft_fft_length * rate), mel_scale=self.mel_scale, num_mel_bins=self.num_mel_bins,
            lower_edge_hertz=self.lower_edge_hertz, upper_edge_hertz=self.upper_edge_hertz,
            num_mfccs=self.num_mfccs if self.mel_scale else 0, cep_lifter=self.cep_lifter, db_scale=self.db_scale,
            top_db=self.top_db, use_plot_images=self.use_plot_images, color_map=self.color_map,
            image_height=self.image_height, image_width=self.image_width, resize_method=self.resize_method,
            anti_alias=self.anti_alias)


@dataclass(frozen=True, kw_only=True)
class AugmentSettings(Settings):
    """Training-time augmentation: SapAugment's policy driving CutMix, SpecAugment and (dspl) stretching."""

    sap_aug_a: float = setting(check=open_unit_interval)
    sap_aug_s: float = setting(check=positive)
    augment_cutmix: bool = setting()
    augment_specaug: bool = setting()
    augment_stretch: bool = setting(False, help="dspl: random time and frequency stretching (speaking rate, VTLP)")
    da_prob_min: float = setting(0.1, check=unit_interval)
    da_prob_max: float = setting(0.5, check=unit_interval)
    cutmix_min: float = setting(0.075, check=unit_interval)
    cutmix_max: float = setting(0.25, check=unit_interval)
    specaug_freq_min: float = setting(0.1, check=unit_interval)
    specaug_freq_max: float = setting(0.3, check=unit_interval)
    specaug_time_min: float = setting(0.1, check=unit_interval)
    specaug_time_max: float = setting(0.3, check=unit_interval)
    specaug_freq_mask_num: int = setting(1, check=mask_count)
    specaug_time_mask_num: int = setting(1, check=mask_count)
    stretch_time_max: float = setting(0.2, check=non_negative,
                                      help="dspl: time scales reach 1/(1+x) .. 1+x at full SapAugment strength")
    stretch_freq_max: float = setting(0.1, check=non_negative,
                                      help="dspl: frequency scales reach 1/(1+x) .. 1+x at full SapAugment strength")


SECTIONS: dict[str, type[Settings]] = {
    "experiment": ExperimentSettings, "model": ModelSettings, "training": TrainingSettings,
    "preprocessing": PreprocessingSettings, "augment": AugmentSettings,
}
"""The parts of a configuration by their attribute name on RunConfig, in schema order."""
