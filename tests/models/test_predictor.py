"""The Predictor (dspl.models.predictor): paths and waveforms, batches over files, bounded memory for long
files."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

import dspl
from dspl.data.chunking import num_chunks


def test_predict_on_a_path_and_on_a_waveform_agree(trained_model, example_dir):
    predictor = dspl.load_model(trained_model)
    path = sorted((example_dir / "audio").glob("test_*.wav"))[0]
    from_path = predictor.predict(path)
    waveform, rate = sf.read(path, dtype="float32")
    assert rate == predictor.config.spec.sample_rate
    from_waveform = predictor.predict(waveform)
    np.testing.assert_array_equal(from_path.chunk_scores, from_waveform.chunk_scores)
    chunks = num_chunks(len(waveform), predictor.config.spec)
    assert from_path.chunk_scores.shape == (chunks, predictor.classes.num_classes)
    np.testing.assert_allclose(from_path.chunk_scores.sum(axis=1), 1.0, atol=1e-5)
    assert from_path.decision in predictor.classes.labels
    assert from_path.decision == predictor.classes.labels[int(np.argmax(from_path.chunk_scores.mean(0)))]


def test_batched_prediction_over_files_equals_one_by_one(trained_model, example_dir):
    files = sorted((example_dir / "audio").glob("*.wav"))[:7]
    batched = list(dspl.load_model(trained_model, batch_size=5).predict_files(files))
    single = [dspl.load_model(trained_model, batch_size=1).predict(f) for f in files]
    assert [p.source for p in batched] == [str(f) for f in files]
    for a, b in zip(batched, single):
        np.testing.assert_allclose(a.chunk_scores, b.chunk_scores, atol=1e-6)



def test_chunks_of_consecutive_files_fill_whole_batches(trained_model, example_dir):
    """Only the last forward pass may be short: a file's leftover chunks wait for the next file's."""
    files = sorted((example_dir / "audio").glob("*.wav"))[:7]
    predictor = dspl.load_model(trained_model, batch_size=6)
    sizes: list[int] = []
    hook = predictor.model.register_forward_hook(lambda _m, inputs, _o: sizes.append(inputs[0].shape[0]))
    predictions = list(predictor.predict_files(files))
    hook.remove()
    assert [len(p.times) for p in predictions] == [4, 3, 2, 3, 2, 3, 3]  # 20 chunks
    assert sizes == [6, 6, 6, 2]

MEASURE = '''
import resource, sys
from dspl.loading import load_model
predictor = load_model(sys.argv[1])
predictor.predict(sys.argv[2])  # warm: model, plots and allocator reach their working size
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
prediction = predictor.predict(sys.argv[3])
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(len(prediction.times), (after - before) // 1024)
'''


@pytest.mark.slow
def test_predicting_a_long_file_keeps_memory_flat(untrained_model_file, tmp_path, write_sine):
    """Four minutes of 48 kHz stereo: decoded whole it would take 92 MB as float32 before its mono mix and
    resampling; streamed, the peak grows by less than 40 MB over predicting a 3 s file."""
    write_sine(tmp_path / "short.wav", seconds=3.0, sample_rate=48000, channels=2)
    rng = np.random.default_rng(0)
    with sf.SoundFile(tmp_path / "long.wav", "w", 48000, 2, subtype="PCM_16") as f:
        for _ in range(240):
            f.write((0.1 * rng.standard_normal((48000, 2))).astype(np.float32))
    output = subprocess.run([sys.executable, "-c", MEASURE, str(untrained_model_file), str(tmp_path / "short.wav"),
                             str(tmp_path / "long.wav")], capture_output=True, text=True, check=True).stdout
    chunks, growth_mb = map(int, output.split())
    assert chunks == 479  # 1 s chunks every 0.5 s of 240 s
    assert growth_mb < 40
