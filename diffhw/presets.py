"""Shipped presets: hardware, models and calibration profiles.

Each is data under ``diffhw/data/`` with its sources; a user's own TOML (hardware,
profile) or Hugging Face ``config.json`` (model) loads the same way by path.
"""

from ._io._hardware import hardware_description, list_hardware
from ._io._hardware import load_hardware as hardware
from ._io._models import MODEL_ALIASES, list_models, model_description, model_from_hf_config
from ._io._models import load_model as model
from ._io._profiles import list_profiles, profile_description
from ._io._profiles import load_profile as profile
from ._io._technology import list_memories, list_nodes, memory_device, technology_for
from ._io._technology import load_technology as technology

__all__ = [
    "MODEL_ALIASES",
    "hardware",
    "hardware_description",
    "list_hardware",
    "list_memories",
    "list_models",
    "list_nodes",
    "list_profiles",
    "memory_device",
    "model",
    "model_description",
    "model_from_hf_config",
    "profile",
    "profile_description",
    "technology",
    "technology_for",
]
