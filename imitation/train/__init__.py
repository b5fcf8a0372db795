"""Behaviour-cloning training: buffers → background batch preparation → model → checkpoints.

Read top to bottom, one training step is:

1. (loader thread, :mod:`.batches`) top the buffers up from storage or from the stream, draw a
   batch (its samples leave the buffer), add context from storage (previous frames for stacking,
   history rows, previous action), resize/greyscale frames exactly as the env wrappers do
   (:class:`wrappers.Preprocessing`), augment (:mod:`.augment`), convert to tensors;
2. (main thread, :mod:`.trainer`) forward, loss per output (masked for per-output buffers),
   AdamW step, schedule;
3. the callbacks (:mod:`.callbacks`): every ``log_every`` steps TensorBoard scalars ``train/…``
   (and W&B when asked); every ``image_every`` the hood frame and its Convcam; every
   ``val_every`` validation ``val/…`` on held-out towns; every ``checkpoint_every`` an atomic
   safetensors checkpoint.

The configuration is :mod:`.config`. Import the public names from here.
"""

from imitation.buffer import as_batch
from imitation.train.augment import augment_batch, augment_frames, draw_augment_params, flip_labels
from imitation.train.batches import BackgroundLoader, BatchMaker, MetaTable
from imitation.train.callbacks import StepInfo, TrainCallback
from imitation.train.config import AugmentConfig, TrainConfig
from imitation.train.trainer import Trainer, resolve_device, train_bc, with_overrides

__all__ = [
    "AugmentConfig",
    "BackgroundLoader",
    "BatchMaker",
    "MetaTable",
    "StepInfo",
    "TrainCallback",
    "TrainConfig",
    "Trainer",
    "as_batch",
    "augment_batch",
    "augment_frames",
    "draw_augment_params",
    "flip_labels",
    "resolve_device",
    "train_bc",
    "with_overrides",
]
