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
    non_negative,
    path_component,
    positive,
    setting,
    unit_interval,
)
from dspl.spec import COLOR_MAPS, RESIZE_METHODS, PreprocessingSpec

OPTIMIZERS = ("adam", "adadelta", "sgd", "adagrad", "ftrl", "nadam", "rmsprop")
PREDICTION_TYPES = ("categorical", "regression")
LR_DECAYS = ("none", "cosine")
MAX_IMAGE_SIDE = 2048
"""Largest image_width and image_height in pixels: far above what image backbones are trained on (224 to 600),
below sizes whose plots, training and reports would run for hours or exhaust memory unannounced."""
MAX_SEED = 2**32 - 1
"""Largest seed: numpy's random generators, which Lightning seeds too, take 0 .. 2**32 - 1."""


def image_side(v: int) -> str | None:
    """The range check of image_width and image_height (see MAX_IMAGE_SIDE)."""
    return None if 1 <= v <= MAX_IMAGE_SIDE else f"a whole number of pixels from 1 to {MAX_IMAGE_SIDE}"


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
    num_units: int = setting(check=positive)
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
    pre_epochs: int = setting(check=non_negative)
    epochs: int = setting(0, check=non_negative)
    batch_size: int = setting(check=positive)
    seed: int = setting(42, check=seed_range, help="dspl: random seed of the run")

    @property
    def total_epochs(self) -> int:
        """Epochs of the whole run: pre_epochs (frozen backbone, or from scratch) plus epochs."""
        return self.pre_epochs + self.epochs


@dataclass(frozen=True, kw_only=True)
class PreprocessingSettings(Settings):
    """What turns a chunk of audio into a plot, as the user writes it (seconds, hertz); `spec` has it in samples."""

    sample_rate: int = setting(check=positive)
    normalize_audio: bool = setting(False)
    chunk_size: float = setting(help="seconds; <= 0 takes each file whole")
    chunk_hop_size: float = setting()
    stft_window_size: float = setting(check=positive)
    stft_hop_size: float = setting(check=positive)
    stft_fft_length: float = setting(check=positive)
    mel_scale: bool = setting()
    lower_edge_hertz: float = setting(check=non_negative)
    upper_edge_hertz: float = setting(check=positive)
    num_mel_bins: int = setting(128, check=positive)
    num_mfccs: int = setting(0, check=non_negative)
    cep_lifter: int = setting(check=non_negative)
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

    sap_aug_a: float = setting(check=positive)
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
    specaug_freq_mask_num: int = setting(1, check=non_negative)
    specaug_time_mask_num: int = setting(1, check=non_negative)
    stretch_time_max: float = setting(0.2, check=non_negative,
                                      help="dspl: time scales reach 1/(1+x) .. 1+x at full SapAugment strength")
    stretch_freq_max: float = setting(0.1, check=non_negative,
                                      help="dspl: frequency scales reach 1/(1+x) .. 1+x at full SapAugment strength")


SECTIONS: dict[str, type[Settings]] = {
    "experiment": ExperimentSettings, "model": ModelSettings, "training": TrainingSettings,
    "preprocessing": PreprocessingSettings, "augment": AugmentSettings,
}
"""The parts of a configuration by their attribute name on RunConfig, in schema order."""
