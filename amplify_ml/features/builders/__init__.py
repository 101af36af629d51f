"""The registered feature functions; importing this package registers them all."""

from amplify_ml.features.builders import accounts, devices, labels, supplies

__all__ = ["accounts", "devices", "labels", "supplies"]
