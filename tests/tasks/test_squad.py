"""SQuAD v1.1 end to end, offline: a generated file in the real format, a WordPiece
tokenizer from a vocab file written here, a BERT from a small config."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch
from torch import nn

from hetmap.errors import ConfigError, DataError
from hetmap.tasks import final_scoring, get_task
from hetmap.tasks.qa import SquadTask, read_squad
from hetmap.tasks.squad_metric import normalize_answer

COLOURS = ["red", "green", "blue", "yellow", "black", "white"]
THINGS = ["car", "house", "boat", "door", "hat", "kite"]
FILLER = ["it", "was", "a", "day", "in", "town", "and", "people", "walked", "home"]
WORDS = sorted({*COLOURS, *THINGS, *FILLER, "the", "is", "what", "colour", "of", ".", "?"})


def _squad(n: int, seed: int, long_every: int = 5) -> dict:
    rng = random.Random(seed)
    articles = []
    for i in range(n):
        thing, colour = rng.choice(THINGS), rng.choice(COLOURS)
        pad = " ".join(rng.choice(FILLER) for _ in range(40 if i % long_every == 0 else 4))
        context = f"{pad} . the {thing} is {colour} . {pad} ."
        start = context.index(f"the {thing} is ") + len(f"the {thing} is ")
        articles.append({"title": f"a{i}", "paragraphs": [{"context": context, "qas": [{
            "id": f"q{i}", "question": f"what is the colour of the {thing} ?",
            "answers": [{"text": colour, "answer_start": start},
                        {"text": f"{colour} .", "answer_start": start}]}]}]})
    return {"version": "1.1", "data": articles}


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("squad")
    (root / "train.json").write_text(json.dumps(_squad(60, 0)))
    (root / "dev.json").write_text(json.dumps(_squad(12, 1)))
    (root / "vocab.txt").write_text("\n".join(
        ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    return {"train": root / "train.json", "dev": root / "dev.json", "vocab": root / "vocab.txt"}


@pytest.fixture(scope="module")
def task(files) -> SquadTask:
    from transformers import BertConfig

    cfg = BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=64)
    return get_task("squad", train_file=files["train"], test_file=files["dev"], config=cfg,
                    tokenizer=files["vocab"], max_length=40, stride=12)


def test_splits_and_windows(task: SquadTask) -> None:
    n = {k: len(v) for k, v in task.split_index.items()}
    assert sum(n.values()) == len(task.features)
    assert len(task.examples) == 72  # 54 train + 6 val + 12 test questions
    assert n["train"] > 54  # long contexts overflow into several windows
    assert task.tokenizer.convert_ids_to_tokens(task.features.inputs["input_ids"][0, :2].tolist()) \
        == ["[CLS]", "what"]


def test_targets_point_at_the_answer(task: SquadTask) -> None:
    feats = task.features
    found = 0
    for f in range(len(feats)):
        s, e, fid = feats.targets[f].tolist()
        assert fid == f
        ex = task.examples[int(feats.example[f])]
        if s == 0:  # answer outside this window
            continue
        text = ex.context[int(feats.offsets[f, s, 0]):int(feats.offsets[f, e, 1])]
        assert normalize_answer(text) == normalize_answer(ex.answers[0])
        found += 1
    assert found >= len(task.examples)


class Oracle(nn.Module):
    """Puts all logit mass on the stored target tokens of whichever window it is shown."""

    def __init__(self, task: SquadTask) -> None:
        super().__init__()
        self.ids = task.features.inputs["input_ids"]
        self.targets = task.features.targets

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        rows = (input_ids[:, None, :] == self.ids[None]).all(-1).float().argmax(1)
        t = self.targets[rows]
        start = torch.nn.functional.one_hot(t[:, 0], input_ids.shape[1]).float() * 10
        end = torch.nn.functional.one_hot(t[:, 1], input_ids.shape[1]).float() * 10
        start[t[:, 0] == 0, 0] = -100.0  # no answer in this window: let another window win
        return start, end


def test_postprocessing_recovers_answers_exactly(task: SquadTask) -> None:
    loaders = task.loaders(8, seed=0)
    with final_scoring():
        for loader in (loaders.val, loaders.test, loaders.train):  # train is shuffled
            scores = task.scores(Oracle(task), loader)
            assert scores == {"exact_match": 100.0, "f1": 100.0}
        assert task.metric(Oracle(task), loaders.test) == 100.0


@pytest.mark.usefixtures("one_thread")
def test_qa_pretrain_runs_offline_and_lowers_the_loss(task: SquadTask, tmp_path: Path) -> None:
    from hetmap.tasks import load_checkpoint
    from hetmap.training import pretrain

    torch.manual_seed(0)
    model = task.build_model()
    x, y = next(iter(task.loaders(16, seed=0).train))
    with torch.no_grad():
        before = float(task.loss(model(**x), y))
    model, metrics = pretrain(task, model, epochs=8, lr=3e-3, batch_size=16, max_steps=25,
                              progress=False, out=tmp_path / "qa.safetensors")
    model.eval()
    with torch.no_grad():
        after = float(task.loss(model(**x), y))
    assert after < before - 0.5
    assert 0.0 <= metrics.test <= 100.0 and metrics.steps == 25
    fresh = load_checkpoint(task.build_model(), tmp_path / "qa.safetensors")
    fresh.eval()
    with torch.no_grad():
        assert torch.allclose(fresh(**x).start_logits, model(**x).start_logits)
    assert task.example_input(3)["input_ids"].shape == (3, 40)


def test_squad_option_errors(files) -> None:
    with pytest.raises(ConfigError, match="model="):
        get_task("squad", train_file=files["train"])
    with pytest.raises(ConfigError, match="tokenizer="):
        get_task("squad", train_file=files["train"], config={"model_type": "bert"})
    with pytest.raises(DataError, match="SQuAD"):
        read_squad(files["vocab"])
