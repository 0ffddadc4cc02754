"""Shipped presets: hardware, models and calibration profiles.

Each is data under ``diffhw/data/`` with its sources; a user's own TOML (hardware,
profile) or Hugging Face ``config.json`` (model) loads the same way by path.
"""

from ._config import (
    MODEL_ALIASES,
    hardware_description,
    list_hardware,
    list_models,
    list_profiles,
    model_description,
    model_from_hf_config,
    profile_description,
)
from ._config import (
    load_hardware as hardware,
)
from ._config import (
    load_model as model,
)
from ._config import (
    load_profile as profile,
)
from ._hardware._technology import list_memories, list_nodes, memory_device, technology_for
from ._hardware._technology import load_technology as technology

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
