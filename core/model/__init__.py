"""CSK-Net: shared-conv / private-BN two-stream encoder, exchange, GSU, decoder, teacher."""

from csknet_studio.core.model.config import BACKBONES, CSKNetConfig
from csknet_studio.core.model.csknet import CSKNet, CSKNetOutput
from csknet_studio.core.model.preprocess import InputNorm, to_tensors
from csknet_studio.core.model.pretrained import load_imagenet_weights
from csknet_studio.core.model.registry import DEFAULT_MODEL, MODEL_REGISTRY, create_model, get_config
from csknet_studio.core.model.single import SingleStreamSegNet, extract_single_stream
from csknet_studio.core.model.teacher import create_teacher

__all__ = [
    "BACKBONES",
    "CSKNet",
    "CSKNetConfig",
    "CSKNetOutput",
    "DEFAULT_MODEL",
    "InputNorm",
    "MODEL_REGISTRY",
    "SingleStreamSegNet",
    "create_model",
    "create_teacher",
    "extract_single_stream",
    "get_config",
    "load_imagenet_weights",
    "to_tensors",
]
