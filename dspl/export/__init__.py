"""Export: the TensorFlow reference preprocessing, the TFLite preprocessor, ONNX/SavedModel/TFLite models."""
