"""End-to-end jobs (train, evaluate, ...) as library functions that the CLI and notebooks both call."""
