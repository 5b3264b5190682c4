"""The PaLM-E model: a sensor encoder, a projector into the LM's embedding space, a causal LM.

``PalmE`` reads multimodal sentences (``embodied.sentence``): the prompt's text is embedded by
the LM's own embedding table, the sensor's tokens are projected to the LM's width and injected
at the placeholders, and the LM is trained (or only read, when frozen) on the target text.

A checkpoint is a directory in Hugging Face layout, loadable by ``transformers`` alone for the
LM part::

    config.json, model.safetensors, generation_config.json   the LM (save_pretrained)
    tokenizer.json, tokenizer_config.json                     its tokenizer
    encoder/encoder.json, encoder/model.safetensors           the sensor encoder
    projector.safetensors                                     encoder width -> LM width
    palme.json                                                ModelConfig
    instruction_encoder/, instruction_projector.safetensors   with an instruction sensor only
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase
from transformers.utils import logging as hf_logging

from embodied.config import ModelConfig
from embodied.lm import IMAGE, embedding_table, load_lm
from embodied.sentence import IGNORE, OBJECTS, PLACEMENTS, Encoded, inject, prompt_text
from encoders import SensorEncoder, load_encoder

MODEL_CONFIG = "palme.json"
PROJECTOR = "projector.safetensors"
ENCODER_DIR = "encoder"
INSTRUCTION_ENCODER_DIR = "instruction_encoder"
INSTRUCTION_PROJECTOR = "instruction_projector.safetensors"


def example_mean_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """``logits (B, T, V)``, ``labels (B, T)`` -> the mean over examples of each example's mean
    cross-entropy on its target tokens (``IGNORE`` elsewhere).

    Every example weighs the same, however long its target: averaging over tokens instead would
    count a plan step (``pick(obj_3)``: 5 tokens with EOS) 2.5 times as much as a colour answer
    (2 tokens). Measured at 600 steps on the 5000-episode corpus: held-out q2 exact match 0.92
    against 0.33 token-averaged, plan steps 0.97 against 0.92."""
    targets = labels[:, 1:]  # (B, T-1): the token at t+1 is predicted at t
    token_loss = nn.functional.cross_entropy(
        logits[:, :-1].transpose(1, 2).float(), targets, ignore_index=IGNORE, reduction="none"
    )  # (B, T-1), zero where ignored
    counted = (targets != IGNORE).sum(1).clamp(min=1)  # (B,)
    return (token_loss.sum(1) / counted).mean()


class PalmE(nn.Module):
    """Sensor encoder + projector + causal LM, reading prompts with sensor placeholders.

    With ``config.instruction_sensor`` a second sensor, ``instruction_encoder``, takes in the
    instruction itself: ``audio`` hears it spoken (its tokens fill the ``<audio>`` placeholders
    that stand where the instruction's text would be), ``region`` sees an object it names
    pointed at (its token fills the ``<region>`` after the region's coordinates); each through
    its own projector."""

    def __init__(
        self,
        lm: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        encoder: SensorEncoder,
        config: ModelConfig,
        instruction_encoder: SensorEncoder | None = None,
    ) -> None:
        super().__init__()
        if encoder.name not in PLACEMENTS:
            raise ValueError(f"encoder {encoder.name!r} has no placement: {sorted(PLACEMENTS)}")
        given = instruction_encoder.name if instruction_encoder is not None else None
        if config.instruction_sensor != given:
            raise ValueError(
                f"model.instruction_sensor={config.instruction_sensor!r} needs that instruction "
                f"encoder, got {given!r}"
            )
        if given is not None and PLACEMENTS[encoder.name] not in (OBJECTS, IMAGE):
            raise ValueError(
                f"an instruction sensor needs a scene encoder beside it, not {encoder.name!r}"
            )
        self.lm, self.tokenizer, self.encoder, self.config = lm, tokenizer, encoder, config
        self.placement = PLACEMENTS[encoder.name]
        width = embedding_table(lm).embedding_dim
        self.projector = self._projector(encoder.dim, width)
        self.instruction_encoder = instruction_encoder
        self.instruction_projector = (
            self._projector(instruction_encoder.dim, width)
            if instruction_encoder is not None
            else None
        )
        self.lm.requires_grad_(not config.freeze_lm)
        if config.freeze_encoder:
            encoder.freeze()
        if config.freeze_instruction_backbone and instruction_encoder is not None:
            instruction_encoder.freeze_backbone()

    def _projector(self, sensor_width: int, width: int) -> nn.Module:
        if self.config.projector == "linear":
            return nn.Linear(sensor_width, width)
        return nn.Sequential(nn.Linear(sensor_width, width), nn.GELU(), nn.Linear(width, width))

    @property
    def inputs(self) -> tuple[str, ...]:
        """The observation keys the model reads: the scene sensor's, then the instruction's."""
        second = self.instruction_encoder.inputs if self.instruction_encoder is not None else ()
        return tuple(dict.fromkeys((*self.encoder.inputs, *second)))

    @property
    def device(self) -> torch.device:
        return next(self.projector.parameters()).device

    def prompt(
        self,
        instruction: str,
        kind: str,
        entities: list[str],
        history: list[str] | None = None,
        history_success: list[bool] | None = None,
        history_reasons: list[str] | None = None,
        rows: list[int] | None = None,
    ) -> str:
        """The prompt text for one decision, with this model's sensor placeholders; the
        failed steps' reasons shown only if the model was trained with them
        (``ModelConfig.failure_reasons``); ``rows``: the object rows of the entities (None:
        0..n-1; ``embodied.sentence.prompt_text``)."""
        return prompt_text(
            instruction,
            kind,
            entities,
            history or [],
            history_success or [],
            self.placement,
            self.encoder.n_tokens,
            self.config.mention_tokens,
            self.config.entity_prefix,
            self._spoken_tokens,
            (history_reasons or []) if self.config.failure_reasons else [],
            rows,
        )

    @property
    def _spoken_tokens(self) -> int:
        """``<audio>`` placeholders that stand for a spoken instruction (0: it is text)."""
        if self.instruction_encoder is None or self.config.instruction_sensor != "audio":
            return 0
        return self.instruction_encoder.n_tokens

    def embed(self, input_ids: Tensor, observation: dict[str, Tensor]) -> Tensor:
        """``(B, T)`` token ids + observation batch (with the instruction sensor's inputs when
        the model has one) -> ``(B, T, D)`` input embeddings."""
        keep = self.config.keep_placeholder
        text = embedding_table(self.lm)(input_ids)  # (B, T, D)
        sensor = self.projector(self.encoder(observation))  # (B, N, D)
        embeddings = inject(text, input_ids, self.tokenizer, self.placement, sensor, keep)
        if self.instruction_encoder is None or self.instruction_projector is None:
            return embeddings
        second = self.instruction_projector(self.instruction_encoder(observation))  # (B, S, D)
        placement = PLACEMENTS[self.instruction_encoder.name]
        return inject(embeddings, input_ids, self.tokenizer, placement, second, keep)

    def forward(self, encoded: Encoded, observation: dict[str, Tensor]) -> Tensor:
        """Cross-entropy on the target tokens (``encoded.labels``), each example weighing the
        same (``example_mean_loss``)."""
        embeddings = self.embed(encoded.input_ids, observation)
        logits = self.lm(inputs_embeds=embeddings, attention_mask=encoded.attention_mask).logits
        return example_mean_loss(logits, encoded.labels)

    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.lm.save_pretrained(directory)
        self.tokenizer.save_pretrained(directory)
        self.encoder.save(directory / ENCODER_DIR)
        weights = {k: v.detach().cpu().contiguous() for k, v in self.projector.state_dict().items()}
        save_file(weights, directory / PROJECTOR)
        if self.instruction_encoder is not None and self.instruction_projector is not None:
            self.instruction_encoder.save(directory / INSTRUCTION_ENCODER_DIR)
            weights = {
                k: v.detach().cpu().contiguous()
                for k, v in self.instruction_projector.state_dict().items()
            }
            save_file(weights, directory / INSTRUCTION_PROJECTOR)
        (directory / MODEL_CONFIG).write_text(json.dumps(asdict(self.config), indent=2))

    @classmethod
    def load(cls, directory: str | Path, **overrides: Any) -> PalmE:
        """A saved model; ``overrides`` change ModelConfig fields (e.g. ``freeze_lm=True``)."""
        directory = Path(directory)
        if not (directory / MODEL_CONFIG).exists():
            raise FileNotFoundError(
                f"{directory} is not a PaLM-E checkpoint ({MODEL_CONFIG} missing): train one "
                f"with python -m embodied.train"
            )
        config = ModelConfig(**{**json.loads((directory / MODEL_CONFIG).read_text()), **overrides})
        hf_logging.disable_progress_bar()
        lm, tokenizer = load_lm(directory)
        second = (
            load_encoder(directory / INSTRUCTION_ENCODER_DIR)
            if config.instruction_sensor is not None
            else None
        )
        model = cls(lm, tokenizer, load_encoder(directory / ENCODER_DIR), config, second)
        model.projector.load_state_dict(load_file(directory / PROJECTOR))
        if model.instruction_projector is not None:
            model.instruction_projector.load_state_dict(
                load_file(directory / INSTRUCTION_PROJECTOR)
            )
        return model
