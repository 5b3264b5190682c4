"""How the instruction reaches a planner that does not read it as text
(``ModelConfig.instruction_sensor``): spoken (``audio``), or with one object pointed at on a view
(``region``). Training, held-out evaluation and the closed-loop planner all go through
``InstructionInputs.prepare``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
from torch import Tensor

from embodied.data.regions import RegionReferrals
from embodied.data.speech import SpokenInstructions, TranscribedInstructions
from encoders import SensorEncoder, load_encoder
from encoders.audio import AudioConfig, AudioEncoder

TRAIN_SEED, HELD_OUT_SEED = 0, 1
"""Training hears each instruction in ``TrainConfig.spoken_variants`` ways from TRAIN_SEED; the
held-out evaluation and the closed-loop planner hear it in the voices of HELD_OUT_SEED."""


class InstructionInputs(Protocol):
    """An instruction sensor's inputs, made from the instructions and the observations."""

    needs: tuple[str, ...]
    """Observation arrays it reads, beyond the scene sensor's."""

    def prepare(
        self,
        instructions: Sequence[str],
        entities: Sequence[Sequence[str]],
        observation: Mapping[str, Tensor],
        draws: np.random.Generator,
    ) -> tuple[list[str], dict[str, Tensor]]:
        """The instructions as the prompts carry them, and the instruction sensor's inputs."""
        ...


def arrays_read(sensor: str | None) -> tuple[str, ...]:
    """Observation arrays an instruction sensor reads from the data (``needs``)."""
    return {None: (), "audio": SpokenInstructions.needs, "region": RegionReferrals.needs}[sensor]


def instruction_inputs(
    encoder: SensorEncoder | None, held_out: bool, spoken_variants: int = 1
) -> InstructionInputs | None:
    """The inputs of a model's instruction sensor (None: it reads its instructions); training
    (not ``held_out``) speaks each instruction in ``spoken_variants`` ways."""
    if encoder is None:
        return None
    if encoder.name == "region":
        return RegionReferrals()
    if not isinstance(encoder.config, AudioConfig):
        raise ValueError(f"instruction encoder {encoder.name!r}: allowed audio or region")
    if held_out:
        return SpokenInstructions(HELD_OUT_SEED, encoder.config.n_mels)
    return SpokenInstructions(TRAIN_SEED, encoder.config.n_mels, spoken_variants)


def transcribed_instructions(
    recognizer: str | Path, held_out: bool, variants: int = 1
) -> TranscribedInstructions:
    """What a planner that reads its instructions reads when they are spoken and transcribed
    by ``recognizer``, a CTC-pretrained audio encoder's directory (the ``final/`` of
    ``python -m embodied.train_encoder encoder=audio``): in held-out voices (``held_out``), or
    in training's, each instruction one of ``variants`` ways."""
    encoder = load_encoder(recognizer)
    if not isinstance(encoder, AudioEncoder):
        raise ValueError(
            f"recognizer={recognizer} holds a {encoder.name!r} encoder: allowed an audio "
            f"encoder (python -m embodied.train_encoder encoder=audio)"
        )
    if held_out:
        return TranscribedInstructions(encoder, HELD_OUT_SEED)
    return TranscribedInstructions(encoder, TRAIN_SEED, variants)
