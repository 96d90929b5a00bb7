# SPDX-License-Identifier: GPL-2.0-or-later
"""Every training knob, in one place: the recipes `reference` and `native`, chosen by name.

`reference` reproduces the reference project (README, "Training"): offline 8x
augmentation, whole images squashed to 512x512, categorical cross-entropy, Adam 1e-4 with
its exponential decay, early stopping on val_loss. `native` is the recipe we recommend for
the plugin: random crops at each image's own resolution (the scale the sliding window feeds
the model), online augmentation, a class-weighted loss for the 52 %-land imbalance and a
schedule that spends a step budget (converted from hours when asked), because on a 2-core
CPU time, not epochs, is the limit.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Recipe:
    """One training recipe. Frozen so a run's recipe cannot drift after it is written down."""

    name: str
    #: "squash": every image resized whole to `image_size` (reference); "crops": random
    #: `image_size` crops at the image's own resolution (native).
    input_mode: str
    image_size: int
    batch_size: int
    steps_per_epoch: int
    max_epochs: int
    #: "crossentropy" (plain, ignored pixels masked out) or "weighted_crossentropy_dice".
    loss: str
    learning_rate: float
    #: "reference_exponential": lr * 0.1 ** (epoch / 60); "step_cosine": warm-up then a
    #: cosine decay over the run's step budget (training.schedule).
    schedule: str
    architecture: str = "unet_inception_resnet_v2"
    #: Passed to the engine's build_model. Its BatchNorm momentum default (0.9, not Keras's
    #: 0.99) is kept by both recipes: a CPU run makes a few hundred steps, too few for 0.99
    #: moving statistics to leave their initial values.
    architecture_params: dict[str, Any] = field(default_factory=dict)
    warmup_steps: int = 0
    min_learning_rate: float = 0.0
    #: Warm-up and peak of a new cycle when a run is extended or starts from a model file
    #: (`--init-from`); peak None = learning_rate.
    restart_warmup_steps: int = 10
    restart_learning_rate: float | None = None
    early_stopping_patience: int | None = None
    early_stopping_min_delta: float = 0.0
    #: Offline augmented copies per training image (reference: 8, i.e. 56 + 448 = 504).
    offline_copies: int = 0
    #: Per-tile RandomCrop (width, height) of the reference's offline augmentation.
    reference_crop_sizes: dict[int, tuple[int, int]] = field(default_factory=dict)
    #: Validation crops per validation image in crop mode (fixed grid, native resolution).
    validation_crops_per_image: int = 4
    #: Validate every this many epochs (and at the first epoch of each process, so every
    #: CSV row has the same columns and a resume or --init-from gets a baseline).
    validation_every: int = 1
    #: Training batches used to re-estimate BatchNorm statistics just before each
    #: validation (0 = validate with the moving averages, as the reference did).
    validation_bn_batches: int = 0
    #: Training-mode batches used to re-estimate BatchNorm statistics before export, the
    #: tile size they are cut at and the tiles per batch (None = the training crop size and
    #: batch size).
    bn_recalibration_batches: int = 32
    bn_recalibration_size: int | None = None
    bn_recalibration_batch_size: int | None = None
    #: Class-weight exponent: weight_c = frequency_c ** -power (0 = unweighted).
    class_weight_power: float = 0.0
    dice_weight: float = 0.0
    #: Progressive crop size: the last `final_crop_fraction` of the current learning-rate
    #: cycle's steps train on `final_crop_size` crops (None = off), so the weights end on
    #: inputs closer to the 512 tiles of inference (more context per crop, fewer borders)
    #: while most steps keep the cheaper small crops. Same weights and optimizer state; the
    #: network is rebuilt at the new size (training.progressive).
    final_crop_size: int | None = None
    final_crop_fraction: float = 0.15
    #: Crops per batch in that phase; None = about the same pixels per batch as before,
    #: round(batch_size * (image_size / final_crop_size) ** 2), so a step costs about the
    #: same memory and the gradient averages over about as many pixels.
    final_batch_size: int | None = None
    #: Defaults written into the exported model file for the sliding window.
    tile_size: int = 512
    overlap: int = 128
    seed: int = 42
    #: Arithmetic of the training steps: "float32", "mixed_bfloat16" (bfloat16 compute,
    #: float32 weights and head) or "auto" (bfloat16 where the CPU has it natively,
    #: training/precision.py). Export and evaluation always run in float32.
    precision: str = "float32"
    #: Geometric augmentation of native crops: "free" (any angle, from a sqrt(2) larger
    #: window) or "rot90" (multiples of 90 degrees and flips: no resampling blur).
    rotation: str = "free"
    #: Share of native crops centred on a pixel of a randomly chosen real class (0 = every
    #: crop uniform), so rare classes (roads, vegetation) are seen more often.
    class_aware_crops: float = 0.0
    #: Exponential moving average of the weights (Adam's use_ema) exported instead of the
    #: last weights; 0 = off. The run also exports and scores its last weights for comparison.
    ema_momentum: float = 0.0
    #: Lovasz-softmax (a surrogate of the IoU the metrics report) added to the loss with this
    #: weight from `lovasz_from` of the learning-rate cycle onwards; 0 = never.
    lovasz_weight: float = 0.0
    lovasz_from: float = 0.5

    def __post_init__(self) -> None:
        """Refuse knob values a run would only trip over later (or never notice)."""
        if self.precision not in ("float32", "mixed_bfloat16", "auto"):
            raise ValueError(f"precision must be float32, mixed_bfloat16 or auto, not {self.precision!r}")
        if self.rotation not in ("free", "rot90"):
            raise ValueError(f"rotation must be free or rot90, not {self.rotation!r}")
        for knob, low, high in (("class_aware_crops", 0.0, 1.0), ("lovasz_from", 0.0, 1.0),
                                ("final_crop_fraction", 0.0, 1.0), ("ema_momentum", 0.0, 0.9999)):
            if not low <= getattr(self, knob) <= high:
                raise ValueError(f"{knob} must be between {low} and {high}, not {getattr(self, knob)!r}")
        if self.ema_momentum and self.final_crop_size:
            # Keras writes the average into the weights when a fit ends, i.e. at the switch too.
            raise ValueError("ema_momentum and final_crop_size cannot be combined (yet): choose one")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, written into every run folder and model file."""
        data = dataclasses.asdict(self)
        data["reference_crop_sizes"] = {str(k): list(v) for k, v in self.reference_crop_sizes.items()}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Recipe:
        """The recipe written by `to_dict` (a run folder's run.json)."""
        crops = {int(k): tuple(v) for k, v in data.get("reference_crop_sizes", {}).items()}
        return cls(**{**data, "reference_crop_sizes": crops})

    def with_overrides(self, **changes: Any) -> Recipe:
        """A copy with some knobs changed (tests use tiny models and sizes)."""
        return dataclasses.replace(self, **changes)


REFERENCE = Recipe(
    name="reference",
    input_mode="squash",
    image_size=512,
    # The reference asked for batch 16 x 32 steps, but its generators used their default
    # batch of 8: each epoch really saw 256 samples.
    batch_size=8,
    steps_per_epoch=32,
    max_epochs=50,
    loss="crossentropy",
    learning_rate=1e-4,
    schedule="reference_exponential",
    early_stopping_patience=12,
    early_stopping_min_delta=0.001,
    offline_copies=8,
    reference_crop_sizes={
        1: (512, 512), 2: (480, 480), 3: (512, 512), 4: (800, 800),
        5: (1024, 1024), 6: (800, 800), 7: (1600, 1600), 8: (1920, 1280),
    },
)

NATIVE = Recipe(
    name="native",
    input_mode="crops",
    # Measured on this 2-core CPU (README "Training"): one Adam step on 8 crops of 256x256
    # takes ~20 s with the reference decoder (512/256/128/64) and ~9.5 s with 256/128/64/32,
    # so the narrower decoder makes twice the steps in a budget (and the decoder is ~3/4 of
    # the inference cost). 256 is the smallest tile the encoder accepts; larger crops cost
    # more per pixel (5.9 s per 384x384 sample against 2.1 s per 256x256 on 2 CPU cores).
    architecture_params={"decoder_filters": [256, 128, 64, 32]},
    image_size=256,
    batch_size=8,
    steps_per_epoch=25,          # a checkpoint every ~4-5 minutes
    max_epochs=10_000,           # the step budget ends the run
    # Measured (README): at equal steps, class weights freq ** -0.5 plus a soft-dice term
    # raised mean IoU from 0.42 to 0.47 (road IoU 0.08 -> 0.25) at the same accuracy.
    loss="weighted_crossentropy_dice",
    class_weight_power=0.5,
    dice_weight=0.5,
    learning_rate=1e-3,          # from scratch (no ImageNet weights here): 10x the reference
    schedule="step_cosine",
    warmup_steps=30,
    min_learning_rate=1e-5,
    # Validation of 64 crops cost about 11 % of the budget every 25 steps and, scored with
    # the moving averages, swung from 0.45 to 0.76 with BatchNorm noise: every 100 steps,
    # after re-estimating the statistics on 8 batches.
    validation_every=4,
    validation_bn_batches=8,
    # Inference runs on 512 tiles: BatchNorm statistics for export are estimated at that
    # size, on as many pixels as 32 batches of 256 crops (32 batches of 2 tiles: a batch of
    # 8 tiles of 512 in training mode grew the process to 24 GB, killed with the export).
    bn_recalibration_batches=32,
    bn_recalibration_size=512,
    bn_recalibration_batch_size=2,
    # A continuation gets a few hundred steps at most: a restart at the from-scratch 1e-3
    # would throw the weights out of the basin the first run ended in before its cosine
    # could bring them back, so a restart peaks lower.
    restart_learning_rate=3e-4,
    # bfloat16 where the CPU has it: 1.49-1.56x the steps per second of float32 here, and at
    # equal steps from the same model and crops the same scores (README, "Training levers").
    precision="auto",
)

RECIPES: dict[str, Recipe] = {r.name: r for r in (REFERENCE, NATIVE)}


def get_recipe(name: str) -> Recipe:
    """The recipe called `name`, or an error listing the known ones."""
    try:
        return RECIPES[name]
    except KeyError:
        raise ValueError(f"unknown recipe {name!r}; choose one of: {', '.join(RECIPES)}") from None
