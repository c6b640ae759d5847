"""DySan on the wearable: host tooling (data, training, evaluation, export, device tools)."""

__version__ = "0.1.0"
