"""Training: one readable loop for every family, resumable, data-parallel with ``torchrun``.

    config = TrainConfig.from_yaml("configs/train/demo_unet.yaml")
    train(config, out="models/demo/unet")            # checkpoint folder + models/demo/unet.state/

Pieces: :mod:`~qpe.training.config` (settings), :mod:`~qpe.training.batches` (which samples each step
sees), :mod:`~qpe.training.ema`, :mod:`~qpe.training.state` (resumable state),
:mod:`~qpe.training.validation`, :mod:`~qpe.training.distributed`, :mod:`~qpe.training.distill` (a few-step
student of a teacher flow) and :mod:`~qpe.training.loop`.
"""

from qpe.training.config import DistillConfig, InputConfig, OptimConfig, TrainConfig, ValidationConfig
from qpe.training.loop import learning_rate, state_dir, train
from qpe.training.state import TrainingState

__all__ = [
    "DistillConfig",
    "InputConfig",
    "OptimConfig",
    "TrainConfig",
    "TrainingState",
    "ValidationConfig",
    "learning_rate",
    "state_dir",
    "train",
]
