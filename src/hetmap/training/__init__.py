"""Training loops. Full-precision pretraining lives in pretrain.py."""

from hetmap.training.pretrain import PretrainMetrics, pretrain

__all__ = ["PretrainMetrics", "pretrain"]

# -- supernet training (stages 1-3) --------------------------------------------------------------
from hetmap.training.config import (
    KDConfig,
    Stage1Config,
    Stage2Config,
    Stage3Config,
    TrainConfig,
    make_config,
)
from hetmap.training.rank import kendall_tau_of_preferences
from hetmap.training.run import TrainMetrics
from hetmap.training.stages import (
    TrainResult,
    train_preferences,
    train_supernet,
    train_weights,
)

__all__ += ["KDConfig", "Stage1Config", "Stage2Config", "Stage3Config", "TrainConfig",
            "TrainMetrics", "TrainResult", "kendall_tau_of_preferences", "make_config",
            "train_preferences", "train_supernet", "train_weights"]
