"""Every task kind runs through the supernet, search, drift and cost: segmentation (embedded
MNIST scenes), question answering (generated SQuAD file, BERT from a config) and the real
all-MiniLM-L6-v2 checkpoint."""

from __future__ import annotations

import json
import os

import pytest
from tests.tasks.test_squad import _squad

import hetmap
from hetmap.config import load_config
from hetmap.hardware import load_hardware
from hetmap.hardware.table import cost_of
from hetmap.pipeline import run
from hetmap.tasks import get_task
from hetmap.training import pretrain

FAST_TRAIN = {"stage1": {"epochs": 1, "max_steps": 4}, "stage2": {"epochs": 1, "max_steps": 4},
              "stage3": {"steps": 2, "n_mappings": 4, "tau_mappings": 0}, "progress": False}


def test_segmentation_runs_through_supernet_search_and_drift(tmp_path) -> None:
    overrides = ["task.name=mnist-seg", "task.options={n_train: 256, n_val: 64, n_test: 64}",
                 "model.name=fcn_resnet8", "train.stage1.epochs=1", "train.stage1.max_steps=3",
                 "train.stage2.epochs=1", "train.stage2.max_steps=3", "train.stage3.steps=2",
                 "train.stage3.n_mappings=4", "train.stage3.tau_mappings=0",
                 "train.progress=false", "search.evaluations=8", "drift.times=[1, 86400]",
                 "drift.repeats=1", "device=cpu"]
    result = run(load_config(None, overrides), tmp_path / "seg", log=lambda _m: None,
                 report=False)
    summary = result.summary
    assert summary["metric"] == "mIoU" and summary["split"] == "test"
    assert all(0 <= row["test_accuracy"] <= 100 and 0 <= row["val_accuracy"] <= 100
               for row in summary["rows"])
    drift = json.loads((tmp_path / "seg" / "drift.json").read_text())
    assert drift["mappings"] and len(drift["mappings"][0]["mean"]) == 2


def test_question_answering_runs_through_supernet_and_search(tmp_path) -> None:
    from transformers import BertConfig

    (tmp_path / "train.json").write_text(json.dumps(_squad(40, 0)))
    words = sorted({w for a in _squad(40, 0)["data"] for p in a["paragraphs"]
                    for w in (p["context"] + " " + p["qas"][0]["question"]).split()})
    (tmp_path / "vocab.txt").write_text("\n".join(
        ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    cfg = BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=64)
    task = get_task("squad", train_file=tmp_path / "train.json", config=cfg,
                    tokenizer=tmp_path / "vocab.txt", max_length=40, stride=12)
    model, _ = pretrain(task, max_steps=6, progress=False, log=lambda _m: None)
    sn = hetmap.build_supernet(model, task.example_input(2), candidates=("fp32", "int8",
                                                                          "analog"))
    hetmap.training.train_supernet(sn, task, FAST_TRAIN)
    ev = hetmap.Evaluator(sn, task, bn_batches=0)
    front = hetmap.search(sn, ev, strategy="mps", budget=6)
    assert len(front) >= 1
    assert all(0 <= m.scores["accuracy"] <= 100 for m in front)  # SQuAD F1 in percent


def test_real_minilm_is_scanned_built_into_a_supernet_and_costed() -> None:
    os.environ["HF_HUB_OFFLINE"] = "1"
    from hetmap.models import load_minilm, load_minilm_tokenizer

    model, tok = load_minilm(), load_minilm_tokenizer()
    inputs = dict(tok(["analog tiles hold the weights"], return_tensors="pt"))
    sn = hetmap.build_supernet(model, inputs, candidates=("fp32", "int8", "analog"),
                               tile=(256, 256))
    # q, k, v, attention out, FFN up and down in each of 6 layers, plus the pooler
    assert len(sn.layer_names) == 6 * 6 + 1
    assert sn.inventory["encoder.layer.0.intermediate.dense"].weight_shape == (1536, 384)
    hermes = load_hardware("hermes-pcm")
    with pytest.raises(hetmap.MappingError, match="analog tiles"):  # 244 tiles > 64
        cost_of(sn, hetmap.Mapping.uniform(sn, "analog"), hw=hermes)
    # several HERMES-like chips side by side, so the whole model stays on tiles
    chips = hermes.model_copy(update={"analog": hermes.analog.model_copy(
        update={"n_tiles": 4 * hermes.analog.n_tiles})})
    fp32 = cost_of(sn, hetmap.Mapping.uniform(sn, "fp32"), hw=chips)
    analog = cost_of(sn, hetmap.Mapping.uniform(sn, "analog"), hw=chips)
    assert analog.analog_tiles == sn.inventory.total_tiles > 0
    assert analog.energy_j < fp32.energy_j
