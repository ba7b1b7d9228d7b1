"""The attribution methods by name, and what a map of each shows: torch-free, so that the command line offers the
choices without loading torch (the methods themselves are in dspl.explain.attribution)."""

METHODS = ("gradcam", "integrated-gradients", "occlusion")
# these need the model's gradients; occlusion needs forward passes only
GRADIENT_METHODS = ("gradcam", "integrated-gradients")
DESCRIPTIONS = {
    "occlusion": "where silencing a patch lowers the predicted class's score most (occlusion)",
    "integrated-gradients": "the gradients of the predicted class's score integrated from a silent plot "
                            "(integrated gradients)",
    "gradcam": "the feature map regions whose gradients raise the predicted class's score (Grad-CAM)",
}
"""What a map of each method shows, in one phrase (for captions)."""
