"""Models: backbone registry, the spectrum classifier, activations, optimizers, losses and metrics."""

from dspl.models.classifier import SpectrumClassifier, create_model

__all__ = ["SpectrumClassifier", "create_model"]
