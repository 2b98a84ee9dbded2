"""Extractive question answering on SQuAD v1.1 JSON files ("squad").

Questions and contexts are tokenised once (fast tokenizer: offsets map tokens back to
characters; long contexts become several overlapping windows) and held as tensors. Targets
are (start token, end token, feature id): the feature id lets `metric` map any batch, even
from a shuffled or subset loader, back to its question and context, pick the best valid span
per question over all its windows and score it with the official EM/F1."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from hetmap.errors import ConfigError, DataError
from hetmap.inputs import call_model
from hetmap.models.pretrained import (
    load_hf_model,
    load_hf_tokenizer,
    load_minilm,
    load_minilm_tokenizer,
)
from hetmap.tasks.base import Loaders, TrainDefaults, eval_mode, move_batch
from hetmap.tasks.data import make_loader
from hetmap.tasks.squad_metric import score_predictions

PathLike = str | os.PathLike[str]
INPUT_KEYS = ("input_ids", "attention_mask", "token_type_ids")
QA_DEFAULTS = TrainDefaults(epochs=2, lr=5e-5, batch_size=16, optimizer="adamw",
                            weight_decay=0.01)


@dataclass(frozen=True)
class SquadExample:
    id: str
    question: str
    context: str
    answers: tuple[str, ...]
    answer_starts: tuple[int, ...]


def read_squad(path: PathLike) -> list[SquadExample]:
    """The questions of a SQuAD v1.1 JSON file ({"data": [{"paragraphs": [{"context",
    "qas": [{"id", "question", "answers": [{"text", "answer_start"}]}]}]}]})."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"SQuAD file {p} does not exist")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))["data"]
        examples = [SquadExample(qa["id"], qa["question"], par["context"],
                                 tuple(a["text"] for a in qa["answers"]),
                                 tuple(int(a["answer_start"]) for a in qa["answers"]))
                    for article in data for par in article["paragraphs"] for qa in par["qas"]]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise DataError(f"{p} is not a SQuAD v1.1 JSON file: {exc!r}") from exc
    if not examples:
        raise DataError(f"{p} holds no questions")
    if any(not e.answers for e in examples):
        raise DataError(f"{p} has questions without answers; SQuAD v2 is not supported")
    return examples


@dataclass
class Features:
    """Tokenised windows: model inputs, targets (start, end, feature id), and the character
    offsets of context tokens ((-1, -1) elsewhere), with the example each window belongs to."""

    inputs: dict[str, Tensor]
    targets: Tensor
    offsets: Tensor
    example: Tensor

    def __len__(self) -> int:
        return len(self.targets)


def tokenize(examples: list[SquadExample], tokenizer: Any, max_length: int, stride: int,
             first_id: int = 0, first_example: int = 0) -> Features:
    if not getattr(tokenizer, "is_fast", False):
        raise ConfigError("SQuAD needs a fast tokenizer (offset mapping); load it with "
                          "AutoTokenizer / BertTokenizerFast")
    enc = tokenizer([e.question for e in examples], [e.context for e in examples],
                    truncation="only_second", max_length=max_length, stride=stride,
                    return_overflowing_tokens=True, return_offsets_mapping=True,
                    padding="max_length")
    sample = enc["overflow_to_sample_mapping"]
    n = len(sample)
    offsets = torch.full((n, max_length, 2), -1, dtype=torch.int32)
    targets = torch.zeros(n, 3, dtype=torch.long)
    for i in range(n):
        seq = enc.sequence_ids(i)
        ctx = [t for t, s in enumerate(seq) if s == 1]
        off = enc["offset_mapping"][i]  # plain lists: per-token tensor indexing is slow
        offsets[i, ctx] = torch.tensor([off[t] for t in ctx], dtype=torch.int32).view(-1, 2)
        ex = examples[sample[i]]
        a_start = ex.answer_starts[0]
        a_end = a_start + len(ex.answers[0])
        targets[i, 2] = first_id + i
        if ctx and off[ctx[0]][0] <= a_start and off[ctx[-1]][1] >= a_end:
            s = next(t for t in ctx if off[t][1] > a_start)
            e = next(t for t in reversed(ctx) if off[t][0] < a_end)
            targets[i, 0], targets[i, 1] = s, max(s, e)
    keys = [k for k in INPUT_KEYS if k in enc]
    # int32 in memory (full SQuAD: ~90k windows of 384 tokens), int64 in batches
    inputs = {k: torch.tensor(enc[k], dtype=torch.int32) for k in keys}
    example = torch.tensor(sample, dtype=torch.long) + first_example
    return Features(inputs, targets, offsets, example)


class FeatureDataset(Dataset):
    def __init__(self, features: Features, index: Tensor) -> None:
        self.features, self.index = features, index

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> tuple[dict[str, Tensor], Tensor]:
        j = int(self.index[i])
        return ({k: v[j].long() for k, v in self.features.inputs.items()},
                self.features.targets[j])


def span_logits(output: Any) -> tuple[Tensor, Tensor]:
    if hasattr(output, "start_logits"):
        return output.start_logits, output.end_logits
    if isinstance(output, list | tuple) and len(output) >= 2:
        return output[0], output[1]
    raise ConfigError(f"a QA model must return start and end logits, got {type(output).__name__}")


def best_spans(start: Tensor, end: Tensor, offsets: Tensor,
               max_answer_length: int) -> tuple[Tensor, Tensor, Tensor]:
    """Per window: the (start, end) token pair inside the context with end >= start, at most
    max_answer_length tokens long, maximising start + end logit; score -inf if none."""
    valid = offsets[..., 0] >= 0
    length = start.shape[-1]
    i = torch.arange(length)
    band = (i[None, :] >= i[:, None]) & (i[None, :] - i[:, None] < max_answer_length)
    ok = band[None] & valid[:, :, None] & valid[:, None, :]
    scores = (start[:, :, None] + end[:, None, :]).masked_fill(~ok, float("-inf"))
    best, flat = scores.flatten(1).max(1)
    return flat // length, flat % length, best


@dataclass
class SquadTask:
    name: str
    examples: list[SquadExample] = field(repr=False)
    features: Features = field(repr=False)
    split_index: dict[str, Tensor] = field(repr=False)
    model_factory: Callable[[], nn.Module] = field(repr=False)
    tokenizer: Any = field(repr=False)
    max_answer_length: int = 30
    defaults: TrainDefaults = field(default_factory=lambda: QA_DEFAULTS)
    metric_name: str = "F1"

    def loaders(self, batch_size: int = 16, seed: int = 0) -> Loaders:
        def loader(split: str, train: bool) -> DataLoader:
            return make_loader(FeatureDataset(self.features, self.split_index[split]),
                               batch_size, train=train, seed=seed)

        return Loaders.sealed(loader("train", True), loader("val", False), loader("test", False))

    def build_model(self) -> nn.Module:
        return self.model_factory()

    def loss(self, output: Any, target: Tensor) -> Tensor:
        start, end = span_logits(output)
        return (F.cross_entropy(start, target[:, 0]) + F.cross_entropy(end, target[:, 1])) / 2

    def predict_indices(self, model: nn.Module, loader: DataLoader,
                        device: torch.device | str = "cpu") -> dict[int, str]:
        """Answer text per example index (ids may repeat across files) for every question
        with a window in `loader`: the best valid span over all its windows."""
        best: dict[int, tuple[float, str]] = {}
        with eval_mode(model):
            for batch in loader:
                inputs, target = move_batch(batch, device)
                start, end = (t.float().cpu() for t in span_logits(call_model(model, inputs)))
                fid = target[:, 2].cpu()
                offsets = self.features.offsets[fid]
                s, e, score = best_spans(start, end, offsets, self.max_answer_length)
                for k in range(len(fid)):
                    ex = int(self.features.example[fid[k]])
                    text = ""
                    if torch.isfinite(score[k]):
                        ctx = self.examples[ex].context
                        text = ctx[int(offsets[k, s[k], 0]):int(offsets[k, e[k], 1])]
                    if ex not in best or float(score[k]) > best[ex][0]:
                        best[ex] = (float(score[k]), text)
        return {ex: text for ex, (_, text) in best.items()}

    def predict(self, model: nn.Module, loader: DataLoader,
                device: torch.device | str = "cpu") -> dict[str, str]:
        """Answer text per question id (the format of the official evaluation script)."""
        preds = self.predict_indices(model, loader, device)
        return {self.examples[ex].id: text for ex, text in preds.items()}

    def scores(self, model: nn.Module, loader: DataLoader,
               device: torch.device | str = "cpu") -> dict[str, float]:
        """Official SQuAD v1.1 {"exact_match", "f1"} in percent over the loader's questions."""
        preds = self.predict_indices(model, loader, device)
        return score_predictions(((str(ex), self.examples[ex].answers) for ex in preds),
                                 {str(ex): text for ex, text in preds.items()})

    def metric(self, model: nn.Module, loader: DataLoader,
               device: torch.device | str = "cpu") -> float:
        return self.scores(model, loader, device)["f1"]

    def example_input(self, batch_size: int = 1) -> dict[str, Tensor]:
        idx = self.split_index["train"][:batch_size]
        idx = idx.repeat((batch_size + len(idx) - 1) // len(idx))[:batch_size]
        return {k: v[idx].long() for k, v in self.features.inputs.items()}


def _config(config: Any) -> Any:
    from transformers import AutoConfig, PretrainedConfig

    if isinstance(config, PretrainedConfig):
        return config
    if isinstance(config, str | os.PathLike):
        p = Path(config)
        if p.is_dir():
            return AutoConfig.from_pretrained(str(p), local_files_only=True)
        if not p.is_file():
            raise ConfigError(f"model config {p} does not exist")
        config = json.loads(p.read_text(encoding="utf-8"))
    if isinstance(config, dict):
        d = dict(config)
        if "model_type" not in d:
            raise ConfigError("a model config dict needs 'model_type' (e.g. 'bert', 'mobilebert')")
        return AutoConfig.for_model(d.pop("model_type"), **d)
    raise ConfigError(f"cannot use a model config of type {type(config).__name__}")


def _model_and_tokenizer(model: PathLike | None, config: Any, tokenizer: Any,
                         layers: int | None = None) -> tuple[Callable[[], nn.Module], Any]:
    if isinstance(tokenizer, str | os.PathLike):
        tokenizer = load_hf_tokenizer(tokenizer)
    if model is not None and config is not None:
        raise ConfigError("give squad either model= (a checkpoint folder) or config=, not both")
    if model is not None and str(model) == "minilm":
        return (lambda: load_minilm("qa", layers)), tokenizer or load_minilm_tokenizer()
    if model is not None:
        return ((lambda: load_hf_model(model, "qa", layers)),
                tokenizer or load_hf_tokenizer(model))
    if layers is not None:
        raise ConfigError("layers= truncates a pretrained checkpoint (model=); with config= "
                          "set num_hidden_layers in the config")
    if config is None:
        raise ConfigError("squad needs model= (a local checkpoint folder, or 'minilm') or "
                          "config= (a transformers config, dict or config.json path)")
    if tokenizer is None:
        raise ConfigError("with config= squad also needs tokenizer= (a folder or vocab.txt)")
    cfg = _config(config)
    if len(tokenizer) > cfg.vocab_size:
        raise ConfigError(f"the tokenizer has {len(tokenizer)} tokens but the model config "
                          f"only {cfg.vocab_size} embeddings; raise vocab_size")
    from transformers import AutoModelForQuestionAnswering

    return (lambda: AutoModelForQuestionAnswering.from_config(cfg)), tokenizer


def squad_task(train_file: PathLike, test_file: PathLike | None = None,
               model: PathLike | None = None, config: Any = None, tokenizer: Any = None,
               max_length: int = 384, stride: int = 128, max_answer_length: int = 30,
               val_fraction: float = 0.1, test_fraction: float = 0.1,
               split_seed: int = 0, layers: int | None = None) -> SquadTask:
    """SQuAD v1.1: val held out of `train_file` by question; test is `test_file` (e.g.
    dev-v1.1.json) or, without one, also held out of train. layers: keep only the first
    `layers` encoder layers of the checkpoint in `model`."""
    factory, tok = _model_and_tokenizer(model, config, tokenizer, layers)
    train_ex = read_squad(train_file)
    perm = np.random.default_rng(split_seed).permutation(len(train_ex))
    n_val = max(1, round(val_fraction * len(train_ex)))
    n_test = 0 if test_file is not None else max(1, round(test_fraction * len(train_ex)))
    if n_val + n_test >= len(train_ex):
        raise DataError(f"{train_file} has {len(train_ex)} questions, too few to hold out "
                        "validation and test questions")
    parts = {"val": perm[:n_val], "test": perm[n_val:n_val + n_test],
             "train": perm[n_val + n_test:]}
    groups = {k: [train_ex[i] for i in sorted(v)] for k, v in parts.items()}
    if test_file is not None:
        groups["test"] = read_squad(test_file)
    examples: list[SquadExample] = []
    chunks: list[Features] = []
    split_index: dict[str, Tensor] = {}
    n_feat = 0
    for split in ("train", "val", "test"):
        f = tokenize(groups[split], tok, max_length, stride, n_feat, len(examples))
        examples += groups[split]
        chunks.append(f)
        split_index[split] = torch.arange(n_feat, n_feat + len(f))
        n_feat += len(f)
    features = Features({k: torch.cat([c.inputs[k] for c in chunks]) for k in chunks[0].inputs},
                        torch.cat([c.targets for c in chunks]),
                        torch.cat([c.offsets for c in chunks]),
                        torch.cat([c.example for c in chunks]))
    return SquadTask("squad", examples, features, split_index, factory, tok, max_answer_length)
