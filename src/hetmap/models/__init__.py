"""Model factories used by the built-in tasks and benchmarks."""

from hetmap.models.fcn import FCNResNet, fcn_resnet
from hetmap.models.mobilenetv2_cifar import MobileNetV2Cifar, mobilenetv2_cifar
from hetmap.models.pretrained import (
    load_hf_model,
    load_hf_tokenizer,
    load_minilm,
    load_minilm_tokenizer,
    minilm_dir,
    wordpiece_tokenizer,
)
from hetmap.models.registry import build_model, model_names, register_model
from hetmap.models.resnet_cifar import ResNetCifar, resnet_cifar
from hetmap.models.small_cnn import SmallCNN, small_cnn

__all__ = ["FCNResNet", "MobileNetV2Cifar", "ResNetCifar", "SmallCNN", "build_model",
           "fcn_resnet", "load_hf_model", "load_hf_tokenizer", "load_minilm",
           "load_minilm_tokenizer", "minilm_dir", "mobilenetv2_cifar", "model_names",
           "register_model", "resnet_cifar", "small_cnn", "wordpiece_tokenizer"]
