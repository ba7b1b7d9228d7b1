"""`RunConfig`: one configuration of a grid, typed, checked and defaulted once, handed down as one object.

It is built from the key/value mapping of a grid combination or of a model file (`from_dict`, which fills the
defaults and names the source of a bad value), or field by field (LightningCLI); either way every value passes
its key's check and the keys that relate to each other pass the checks below. `to_dict` gives the mapping back
in schema order: what model files and TensorBoard store.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Mapping

from dspl.config.keys import ConfigError
from dspl.config.labels import LabelParserRef
from dspl.config.schema import ALIASES, SCHEMA, SECTION_OF
from dspl.config.settings import (
    MAX_FFT_SAMPLES,
    SECTIONS,
    AugmentSettings,
    ExperimentSettings,
    ModelSettings,
    PreprocessingSettings,
    TrainingSettings,
)
from dspl.spec import PreprocessingSpec

# Pairs of keys whose first must not exceed the second.
RANGES = (("da_prob_min", "da_prob_max"), ("cutmix_min", "cutmix_max"), ("specaug_freq_min", "specaug_freq_max"),
          ("specaug_time_min", "specaug_time_max"))


def unknown_key(name: str) -> ConfigError:
    """The error for a key no part of a configuration has, with the closest known key."""
    close = difflib.get_close_matches(name, list(SCHEMA) + list(ALIASES), n=1, cutoff=0.6)
    return ConfigError(f"unknown key '{name}'" + (f" (did you mean '{close[0]}'?)" if close else ""))


def both_spellings(canonical: str) -> ConfigError:
    """The error for a key given both under its name and under an alias (which value counts would be a guess)."""
    aliases = " or ".join(f"'{alias}'" for alias, key in ALIASES.items() if key == canonical)
    return ConfigError(f"key '{canonical}' is given twice, as '{canonical}' and as its alias {aliases}: expected "
                       "one of them")


def missing_keys(names: list[str]) -> ConfigError:
    """The error for required keys that were not given (the first named, the rest counted)."""
    more = f" (and {len(names) - 1} more: {', '.join(names[1:])})" if len(names) > 1 else ""
    return ConfigError(f"required key '{names[0]}' is missing{more}")


def check_combination(hp: Mapping[str, Any]) -> None:
    """Checks that relate several keys of one configuration (a ConfigError names the key and value)."""
    def fail(name: str, message: str) -> None:
        raise ConfigError(f"key '{name}': value {json.dumps(hp[name])} {message}")

    rate = hp["sample_rate"]
    if hp["stft_fft_length"] < hp["stft_window_size"]:
        fail("stft_fft_length", f"is shorter than stft_window_size ({hp['stft_window_size']})")
    if hp["stft_fft_length"] * rate > MAX_FFT_SAMPLES:
        fail("stft_fft_length", f"gives {int(hp['stft_fft_length'] * rate)} samples at sample_rate {rate}, expected at "
                                f"most {MAX_FFT_SAMPLES} samples per FFT")
    if hp["upper_edge_hertz"] <= hp["lower_edge_hertz"]:
        fail("upper_edge_hertz", f"must be above lower_edge_hertz ({hp['lower_edge_hertz']})")
    nyquist = rate / 2
    if hp["upper_edge_hertz"] > nyquist:
        fail("upper_edge_hertz", f"is above the Nyquist frequency {nyquist:g} of sample_rate {rate}")
    if hp["num_mfccs"] > hp["num_mel_bins"]:
        fail("num_mfccs", f"exceeds num_mel_bins ({hp['num_mel_bins']})")
    if hp["num_mfccs"] > 0 and not hp["mel_scale"]:
        fail("num_mfccs", "needs mel_scale true (MFCCs are computed from the log-mel spectrogram)")
    if hp["chunk_size"] > 0 and hp["chunk_hop_size"] <= 0:
        fail("chunk_hop_size", "must be > 0 when chunk_size > 0")
    if hp["chunk_size"] <= 0 and not hp["use_plot_images"]:
        fail("chunk_size", "(whole files) needs use_plot_images true: raw features of files of different lengths "
                           "have different shapes, expected chunk_size > 0")
    for low, high in RANGES:
        if hp[low] > hp[high]:
            fail(low, f"is above {high} ({hp[high]})")
    frame = int(hp["stft_window_size"] * rate)
    if frame < 2:
        fail("stft_window_size", f"gives fewer than 2 samples per frame at sample_rate {rate}")
    # chunk_hop_size counts only when files are cut into chunks
    hops = ("stft_hop_size", "chunk_hop_size") if hp["chunk_size"] > 0 else ("stft_hop_size",)
    for hop in hops:
        if int(hp[hop] * rate) < 1:
            fail(hop, f"is less than one sample at sample_rate {rate}")
    if hp["chunk_size"] > 0:
        if int(hp["chunk_size"] * rate) < frame:
            fail("stft_window_size", f"is longer than a chunk (chunk_size {hp['chunk_size']} s): expected a window "
                                     "that fits into one chunk")


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    """One configuration: where its outputs go, the network, the training, the preprocessing, the augmentation.

    ``label_parser`` is the `label_parser` value resolved where the configuration was read (see from_dict);
    ``spec`` is the preprocessing in samples and pixels. Each part is also an attribute (``config.model``).
    """

    experiment: ExperimentSettings
    model: ModelSettings
    training: TrainingSettings
    preprocessing: PreprocessingSettings
    augment: AugmentSettings

    def __post_init__(self) -> None:
        check_combination(self.to_dict())
        self.spec  # noqa: B018 - sizes below one sample are errors now, not when the spec is first used

    @cached_property
    def spec(self) -> PreprocessingSpec:
        return self.preprocessing.spec

    @cached_property
    def label_parser(self) -> LabelParserRef:
        """The label parser, resolved relative to the working directory unless from_dict resolved it otherwise."""
        return LabelParserRef.resolve(self.experiment.label_parser, [Path.cwd()])

    def _set_label_parser(self, ref: LabelParserRef) -> None:
        self.__dict__["label_parser"] = ref  # the cached value (the dataclass is frozen)

    @property
    def categorical(self) -> bool:
        return self.model.categorical

    @property
    def prediction_type(self) -> str:
        return self.model.prediction_type

    def to_dict(self) -> dict[str, Any]:
        """Every key and its value, in schema order (what model files store)."""
        return {name: value for part in SECTIONS for name, value in getattr(self, part).values().items()}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], source: str = "<config>",
                  label_parser: Callable[[str], LabelParserRef] | None = None) -> "RunConfig":
        """The configuration of a key/value mapping: aliases accepted, defaults filled, every value checked.

        ``label_parser`` resolves the `label_parser` value (default: relative to the working directory); a
        DsplError names ``source``, the key and the value.
        """
        try:
            parts: dict[str, dict[str, Any]] = {part: {} for part in SECTIONS}
            for name, value in values.items():
                canonical = ALIASES.get(name, name)
                if canonical not in SECTION_OF:
                    raise unknown_key(name)
                if canonical in parts[SECTION_OF[canonical]]:
                    raise both_spellings(canonical)
                parts[SECTION_OF[canonical]][canonical] = value
            missing = [name for name, key in SCHEMA.items() if key.required and name not in parts[SECTION_OF[name]]]
            if missing:
                raise missing_keys(missing)
            config = cls(**{part: SECTIONS[part](**items) for part, items in parts.items()})
            if label_parser is not None:
                config._set_label_parser(label_parser(config.experiment.label_parser))
        except ConfigError as exc:
            raise exc.in_source(source) from None
        return config

    def replace(self, **changes: Any) -> "RunConfig":
        """A copy with some keys changed (checked as any configuration is), its label parser kept."""
        parts = {part: dataclasses.replace(getattr(self, part), **{name: value for name, value in changes.items()
                                                                    if SECTION_OF.get(name) == part})
                 for part in SECTIONS}
        unknown = [name for name in changes if name not in SECTION_OF]
        if unknown:
            raise unknown_key(unknown[0])
        config = RunConfig(**parts)
        config._set_label_parser(self.label_parser)
        return config
