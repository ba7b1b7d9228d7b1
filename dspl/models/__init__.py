"""Models: the backbone registry and its backbones, the spectrum classifier, its training module, the model file.

Importing the package registers dspl's own backbones (DeepSpectrumLite's names, timm, torchvision) as the
registry's fallback; other packages register theirs (dspl.models.registry).
"""

from dspl.models import backbones  # noqa: F401 - registers dspl's backbones
from dspl.models.classifier import InputNormalisation, SpectrumClassifier, create_model
from dspl.models.loaded import LoadedModel, SavedModelRoute, restore_model

__all__ = ["InputNormalisation", "LoadedModel", "SavedModelRoute", "SpectrumClassifier", "create_model",
           "restore_model"]
