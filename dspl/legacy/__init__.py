"""DeepSpectrumLite's own Keras model files: recognise, run, export and port them into PyTorch."""
