"""Sensor encoders: each maps an observation batch to ``(B, n_tokens, dim)`` tokens, is built by
name from its config (``make_encoder``), can be frozen, and saves and loads with safetensors."""

from encoders.audio import AudioEncoder
from encoders.base import ENCODERS, SensorEncoder, load_encoder, make_encoder
from encoders.object_centric import ObjectCentricEncoder
from encoders.osrt import OSRTEncoder
from encoders.region import RegionEncoder
from encoders.state import StateEncoder
from encoders.vit import ViTEncoder

__all__ = [
    "ENCODERS",
    "AudioEncoder",
    "OSRTEncoder",
    "ObjectCentricEncoder",
    "RegionEncoder",
    "SensorEncoder",
    "StateEncoder",
    "ViTEncoder",
    "load_encoder",
    "make_encoder",
]
