"""TFLite model metadata (the "TFLITE_METADATA" flatbuffer of metadata_schema.fbs) for audio classifiers.

Written with flatbuffers builders from the published schema, so standard TFLite audio clients (MediaPipe's
AudioClassifier, the TFLite task library) find the sample rate and channels on the input tensor and the
class labels (a TENSOR_AXIS_LABELS file) on the output. Associated files are zipped onto the model's end as
the metadata specification describes; dspl's preprocessing parameters travel as one of them (JSON).
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import flatbuffers
import numpy as np

from dspl.export import tflite_file

METADATA_NAME = "TFLITE_METADATA"
FILE_IDENTIFIER = b"M001"
MIN_PARSER_VERSION = "1.3.0"  # AudioProperties were added in metadata schema 1.3.0
LABELS_FILE = "labels.txt"
PREPROCESSING_FILE = "dspl_preprocessing.json"

# Enum values and union tags of metadata_schema.fbs.
TENSOR_AXIS_LABELS = 2
DESCRIPTIONS = 1
CONTENT_FEATURE = 1
CONTENT_IMAGE = 2
CONTENT_AUDIO = 4
COLOR_SPACE_RGB = 1


@dataclass
class ModelInfo:
    """What the metadata describes: names, labels, audio properties (None for image models), preprocessing."""

    name: str
    description: str
    version: str
    labels: Sequence[str]
    input_name: str
    input_description: str
    output_description: str
    sample_rate: int | None = None
    channels: int = 1
    image_size: tuple[int, int] | None = None  # (width, height) of an image input
    preprocessing: dict[str, Any] = field(default_factory=dict)
    author: str = "dspl"


def _string_vector(builder: flatbuffers.Builder, offsets: Sequence[int]) -> int:
    builder.StartVector(4, len(offsets), 4)
    for offset in reversed(offsets):
        builder.PrependUOffsetTRelative(offset)
    return builder.EndVector()


def _associated_file(builder: flatbuffers.Builder, name: str, description: str, kind: int) -> int:
    name_offset, description_offset = builder.CreateString(name), builder.CreateString(description)
    builder.StartObject(5)
    builder.PrependUOffsetTRelativeSlot(0, name_offset, 0)
    builder.PrependUOffsetTRelativeSlot(1, description_offset, 0)
    builder.PrependInt8Slot(2, kind, 0)
    return builder.EndObject()


def _content(builder: flatbuffers.Builder, info: ModelInfo, is_input: bool) -> int:
    if is_input and info.sample_rate is not None:
        builder.StartObject(2)  # AudioProperties
        builder.PrependUint32Slot(0, int(info.sample_rate), 0)
        builder.PrependUint32Slot(1, int(info.channels), 0)
        kind, properties = CONTENT_AUDIO, builder.EndObject()
    elif is_input and info.image_size is not None:
        builder.StartObject(2)  # ImageSize
        builder.PrependUint32Slot(0, info.image_size[0], 0)
        builder.PrependUint32Slot(1, info.image_size[1], 0)
        size = builder.EndObject()
        builder.StartObject(2)  # ImageProperties
        builder.PrependInt8Slot(0, COLOR_SPACE_RGB, 0)
        builder.PrependUOffsetTRelativeSlot(1, size, 0)
        kind, properties = CONTENT_IMAGE, builder.EndObject()
    else:
        builder.StartObject(0)  # FeatureProperties
        kind, properties = CONTENT_FEATURE, builder.EndObject()
    builder.StartObject(3)  # Content
    builder.PrependUint8Slot(0, kind, 0)
    builder.PrependUOffsetTRelativeSlot(1, properties, 0)
    return builder.EndObject()


def _tensor(builder: flatbuffers.Builder, info: ModelInfo, is_input: bool) -> int:
    name = builder.CreateString(info.input_name if is_input else "scores")
    description = builder.CreateString(info.input_description if is_input else info.output_description)
    content = _content(builder, info, is_input)
    files = None
    if not is_input:
        files = _string_vector(builder, [_associated_file(builder, LABELS_FILE, "Class labels, one per output.",
                                                          TENSOR_AXIS_LABELS)])
    builder.StartObject(7)  # TensorMetadata
    builder.PrependUOffsetTRelativeSlot(0, name, 0)
    builder.PrependUOffsetTRelativeSlot(1, description, 0)
    builder.PrependUOffsetTRelativeSlot(3, content, 0)
    if files is not None:
        builder.PrependUOffsetTRelativeSlot(6, files, 0)
    return builder.EndObject()


def metadata_flatbuffer(info: ModelInfo) -> bytes:
    """The ModelMetadata flatbuffer (file identifier M001) for a one-input, one-output model."""
    builder = flatbuffers.Builder(1024)
    inputs = _string_vector(builder, [_tensor(builder, info, True)])
    outputs = _string_vector(builder, [_tensor(builder, info, False)])
    builder.StartObject(10)  # SubGraphMetadata
    builder.PrependUOffsetTRelativeSlot(2, inputs, 0)
    builder.PrependUOffsetTRelativeSlot(3, outputs, 0)
    subgraph = builder.EndObject()
    subgraphs = _string_vector(builder, [subgraph])
    files = _string_vector(builder, [_associated_file(builder, PREPROCESSING_FILE,
                                                      "dspl preprocessing parameters (JSON).", DESCRIPTIONS)])
    strings = [builder.CreateString(text) for text in (info.name, info.description, info.version, info.author,
                                                       MIN_PARSER_VERSION)]
    builder.StartObject(8)  # ModelMetadata
    builder.PrependUOffsetTRelativeSlot(0, strings[0], 0)
    builder.PrependUOffsetTRelativeSlot(1, strings[1], 0)
    builder.PrependUOffsetTRelativeSlot(2, strings[2], 0)
    builder.PrependUOffsetTRelativeSlot(3, subgraphs, 0)
    builder.PrependUOffsetTRelativeSlot(4, strings[3], 0)
    builder.PrependUOffsetTRelativeSlot(6, files, 0)
    builder.PrependUOffsetTRelativeSlot(7, strings[4], 0)
    builder.Finish(builder.EndObject(), file_identifier=FILE_IDENTIFIER)
    return bytes(builder.Output())


def add_metadata(model: bytes, info: ModelInfo) -> bytes:
    """A copy of a .tflite model carrying TFLITE_METADATA and, zipped at its end, labels and preprocessing."""
    schema = tflite_file.schema()
    tree = tflite_file.unpack(model)
    tree.metadata = [entry for entry in (tree.metadata or []) if entry.name.decode() != METADATA_NAME]
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(metadata_flatbuffer(info), dtype=np.uint8)
    tree.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = METADATA_NAME.encode()
    entry.buffer = len(tree.buffers) - 1
    tree.metadata.append(entry)
    stream = io.BytesIO(tflite_file.pack(tree, len(model)))
    with zipfile.ZipFile(stream, "a") as archive:  # appended after the flatbuffer, which stays readable
        archive.writestr(LABELS_FILE, "".join(f"{label}\n" for label in info.labels))
        archive.writestr(PREPROCESSING_FILE, json.dumps(info.preprocessing, indent=2, sort_keys=True))
    return stream.getvalue()


def associated_files(model: str | Path | bytes) -> dict[str, bytes]:
    """The files zipped onto a .tflite model (empty when it carries none)."""
    data = model if isinstance(model, bytes) else Path(model).read_bytes()
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return {name: archive.read(name) for name in archive.namelist()}
    except zipfile.BadZipFile:
        return {}
