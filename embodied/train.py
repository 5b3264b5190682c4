"""``python -m embodied.train``: train the PaLM-E planner on generated episodes.

Examples::

    python -m embodied.generate                              # the data (data/tabletop), once
    python -m embodied.train                                 # state tokens, the default small LM
    python -m embodied.train encoder=object_centric \
        encoder_checkpoint=runs/encoder_object_centric/final   # a pretrained encoder
    python -m embodied.train model.freeze_lm=true lm.path=runs/planner_state/lm   # frozen LM
    torchrun --nproc_per_node=2 -m embodied.train            # DistributedDataParallel

Two stages. (1) The LM: ``lm.path`` loads any local Hugging Face causal LM; without it the
default is built here: a byte-level BPE tokenizer trained on the corpus's text, a small Llama, and
``lm.pretrain_steps`` of text-only pretraining on the same prompts and targets with the sensor
placeholders left as plain tokens (this project's stand-in for a pretrained LLM; saved in
``output_dir/lm``). (2) The multimodal model: sensor tokens projected into the prompts, loss on the
targets only (every example weighing the same), every task family of the data mixed (or
``families``), in shares set by ``family_alpha``.

Progress bar; ``metrics.jsonl`` (train loss; held-out loss and the share of held-out frames whose
greedy decode is exactly the target); ``checkpoint/`` every ``checkpoint_every`` steps in Hugging
Face layout (``embodied.model``) plus ``trainer.pt``; ``final/`` at the end. Rerunning resumes,
and since every batch and random draw comes from (seed, step), a resumed run ends with the same
weights as an uninterrupted one. Uses the GPU when there is one; under ``torchrun`` each process
takes its share of every batch and DistributedDataParallel averages the gradients (gloo on CPU,
nccl on GPUs).
"""

from __future__ import annotations

import json
import os
import shutil
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import torch
import torch.distributed as dist
from omegaconf import DictConfig
from torch import Tensor
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase
from transformers.utils import logging as hf_logging

from embodied.config import (
    TRAINED_ON,
    ModelConfig,
    TrainConfig,
    register_configs,
    to_config_or_exit,
)
from embodied.data.dataset import MANIFEST
from embodied.data.frames import FrameBank
from embodied.decoding import MAX_REPLY_TOKENS, greedy_decode
from embodied.entity_names import ENTITY_NAMES, labelled, name_by_colour, rename_record
from embodied.instructions import (
    InstructionInputs,
    arrays_read,
    instruction_inputs,
    transcribed_instructions,
)
from embodied.lm import load_lm, small_llama, train_tokenizer
from embodied.model import MODEL_CONFIG, PalmE
from embodied.sentence import IGNORE, PLACEMENTS, encode, prompt_text
from embodied.train_encoder import encoder_fields
from embodied.training import (
    CHECKPOINT,
    FINAL,
    FRESH,
    latest_checkpoint,
    learning_rate,
    load_trainer_state,
    optimize,
    run_or_exit,
)
from encoders import ENCODERS, SensorEncoder, load_encoder, make_encoder
from envs import keys
from envs.base import OBJECT_CAPACITY
from envs.scene import SymbolicState
from envs.tasks.base import QuestionTask
from envs.tasks.tamp import SUPPORT_QUESTION, TAMP_FAMILIES, describe_support, question_checks

register_configs()

LM_DIR = "lm"
RUN_CONFIG = "train_config.json"


def relabel_entities(record: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    """The record with its ``obj_j`` entities renamed to distinct labels drawn from obj_1 ..
    obj_{OBJECT_CAPACITY} (kept ascending, as scenes list them), in every text it holds.

    The entity-referral prefix ("obj_7 is <obj_2>.") is what binds a label to an object's
    token, so the label is free to choose; scenes of n objects name them obj_1..obj_n in
    order, so without this a planner trained on 1-5 objects has never written obj_6..obj_8.
    Records whose entities are not all ``obj_j`` (the kitchen's words) are returned as is."""
    entities = record["entities"]
    if not labelled(entities):
        return record
    labels = np.sort(rng.choice(OBJECT_CAPACITY, len(entities), replace=False)) + 1
    return rename_record(record, {e: f"obj_{j}" for e, j in zip(entities, labels, strict=True)})


def spread_rows(record: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    """The record with ``rows``: distinct object rows of the OBJECT_CAPACITY the sensor has,
    drawn at random (ascending), that its objects move to (``move_object_rows``) and its
    prompt's placeholders name ("obj_2 is <obj_7>.").

    Scenes fill rows 0..n-1, so a planner trained on 1-5 objects has never read rows 5-7: their
    placeholders' embeddings and the support relation's one-hot columns for them
    (``encoders.state``) stay as initialized, and 8-object scenes feed those untrained weights.
    Records whose entities are not all ``obj_j`` (the kitchen's) are returned as is."""
    if not labelled(record["entities"]):
        return record
    rows = np.sort(rng.choice(OBJECT_CAPACITY, len(record["entities"]), replace=False))
    return {**record, "rows": [int(row) for row in rows]}


def move_object_rows(
    observation: dict[str, Tensor], records: Sequence[dict[str, Any]]
) -> dict[str, Tensor]:
    """The observation batch with each example's object rows 0..n-1 (``keys.OBJECTS``,
    ``keys.OBJECT_MASK``) moved to its record's ``rows`` (``spread_rows``), the others padding;
    examples without ``rows`` stay as they are."""
    objects, mask = observation[keys.OBJECTS].clone(), observation[keys.OBJECT_MASK].clone()
    for b, record in enumerate(records):
        if "rows" not in record:
            continue
        n = len(record["rows"])
        filled = mask[b].bool()
        if int(filled.sum()) != n or not bool(filled[:n].all()):
            raise ValueError(
                f"example {b} has {int(filled.sum())} object rows (mask {mask[b].tolist()}) "
                f"for {n} entities: spreading rows needs rows 0..{n - 1} filled, no others"
            )
        rows = torch.as_tensor(record["rows"])
        moved_objects = torch.zeros_like(objects[b])  # (N, F)
        moved_objects[rows] = objects[b, :n]
        moved_mask = torch.zeros_like(mask[b])  # (N,)
        moved_mask[rows] = mask[b, :n]
        objects[b], mask[b] = moved_objects, moved_mask
    return {**observation, keys.OBJECTS: objects, keys.OBJECT_MASK: mask}


def resample_question(record: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    """A tabletop question frame asked anew: a question of the same family (q1-q4) drawn by
    that family from the frame's symbolic state, with its answer, in place of the one the
    episode asked. The observation is the frame's, so the answer stays true of what the
    sensors show; a scene holds many questions (q4 alone: every ordered triple of its
    cubes), and an episode asks one. Other records are returned as is."""
    family = TAMP_FAMILIES.get(record["family"])
    if record["kind"] != "question" or family is None:
        return record
    task = family.sample(SymbolicState.from_json(record["symbolic_state"]), rng)
    if not isinstance(task, QuestionTask):  # the family found nothing to ask here
        return record
    return {**record, "instruction": task.instruction, "target": task.answer}


def explain_answer(record: dict[str, Any]) -> dict[str, Any]:
    """A q4 frame with the checks of its sequence written before its answer ("obj_1 is on top.
    obj_4 is on top. then obj_4 is below obj_1. no"; ``envs.tasks.tamp.feasibility_checks``,
    from the frame's symbolic state), feasible or not. Other records are returned as is."""
    if record["kind"] != "question" or record["family"] != "q4":
        return record
    state = SymbolicState.from_json(record["symbolic_state"])
    checks = question_checks(state, record["instruction"])
    if checks is None:
        return record
    implied = "yes" if all(check.passed for check in checks) else "no"
    reason = ". ".join(check.fact for check in checks)
    if record["target"] != implied:
        raise ValueError(
            f"q4 frame answered {record['target']!r} although {reason}: the frame's answer and "
            f"symbolic state disagree ({record['instruction']!r})"
        )
    return {**record, "target": f"{reason}. {implied}"}


def ask_question(record: dict[str, Any], family: str, rng: np.random.Generator) -> dict[str, Any]:
    """A tabletop frame of any family, its hand empty, asked a question of ``family`` (q1-q4)
    drawn by that family from its symbolic state, with its answer, without the plan history:
    the family taught on every scene the corpus holds (every frame of every plan), not on its
    own question frames alone."""
    state = SymbolicState.from_json(record["symbolic_state"])
    if record["family"] not in TAMP_FAMILIES or state.held is not None:
        raise ValueError(
            f"extra questions need tabletop frames with an empty hand (families "
            f"{sorted(TAMP_FAMILIES)}); this frame is of family {record['family']!r}, "
            f"holding {state.held!r}"
        )
    task = TAMP_FAMILIES[family].sample(state, rng)
    if not isinstance(task, QuestionTask):
        raise ValueError(f"no {family} question fits a scene of {len(state.objects)} object(s)")
    return asked_of(record, family, task.instruction, task.answer)


def asked_of(record: dict[str, Any], family: str, question: str, answer: str) -> dict[str, Any]:
    """The frame ``record`` as a question frame of ``family``: ``question``, answered
    ``answer``, without the plan history its episode had."""
    return {
        **record,
        "kind": "question",
        "family": family,
        "instruction": question,
        "target": answer,
        "history": [],
        "history_success": [],
        "history_reasons": [],
    }


def askable_frames(bank: FrameBank) -> Tensor:
    """``(N,)`` indices of the tabletop frames whose hand is empty: those ``ask_question`` may
    ask (the corpus asks its questions of such frames; a q4 question whose hand holds a cube is
    answered "no" before any check)."""
    return torch.tensor(
        [
            i
            for i, record in enumerate(bank.records)
            if record["family"] in TAMP_FAMILIES
            and SymbolicState.from_json(record["symbolic_state"]).held is None
        ],
        dtype=torch.long,
    )


SCENE_FAMILY = "scene"
"""The family of a frame asked ``describe_scene``'s question (in held-out metrics: scene_...)."""


def describe_scene(record: dict[str, Any]) -> dict[str, Any]:
    """A tabletop frame of any family asked which cube rests on which (``SUPPORT_QUESTION``),
    answered from its symbolic state (``envs.tasks.tamp.describe_support``), without the plan
    history: the relation every q4 check reads, taught on every frame."""
    if record["family"] not in TAMP_FAMILIES:
        raise ValueError(
            f"scene descriptions need tabletop frames (families {sorted(TAMP_FAMILIES)}); "
            f"this frame is of family {record['family']!r}"
        )
    state = SymbolicState.from_json(record["symbolic_state"])
    return asked_of(record, SCENE_FAMILY, SUPPORT_QUESTION, describe_support(state))


def frame_records(
    bank: FrameBank,
    index: Tensor | Sequence[int],
    draws: np.random.Generator | None = None,
    relabel: bool = False,
    resample: bool = False,
    entity_names: str = "label",
    rationales: bool = False,
    described: bool = False,
    asked: str | None = None,
    spread: float = 0.0,
) -> list[dict[str, Any]]:
    """The records (instruction, entities, history, target, ...) of these frames: each asked
    to describe its scene (``describe_scene``, ``described``), or a question of the family
    ``asked`` (``ask_question``) or their questions asked anew by
    ``resample_question`` (``resample``), and the q4 answers preceded by their checks
    (``explain_answer``, ``rationales``); then their entities relabelled by
    ``relabel_entities`` (``relabel``), drawing from ``draws``, and the objects of a
    ``spread`` fraction of them given rows by ``spread_rows``; last, with
    ``entity_names="colour"``, each cube named by its colour (``embodied.entity_names``)."""
    records = [bank.records[int(i)] for i in index]
    if entity_names not in ENTITY_NAMES:
        raise ValueError(f"entity_names={entity_names!r}: allowed {ENTITY_NAMES}")
    if relabel and entity_names != "label":
        raise ValueError(
            f"relabelling draws obj_j labels; entity_names={entity_names!r} drops them"
        )
    if (relabel or resample or asked or spread) and draws is None:
        raise ValueError("relabelling entities, spreading rows or asking questions needs draws")
    if described:
        records = [describe_scene(r) for r in records]
    else:
        if asked is not None:
            assert draws is not None
            records = [ask_question(r, asked, draws) for r in records]
        elif resample:
            assert draws is not None
            records = [resample_question(r, draws) for r in records]
        if rationales:
            records = [explain_answer(r) for r in records]
    if relabel:
        assert draws is not None
        records = [relabel_entities(r, draws) for r in records]
    if spread:
        assert draws is not None
        chosen = draws.random(len(records)) < spread  # (N,): which examples are spread
        records = [spread_rows(r, draws) if c else r for r, c in zip(records, chosen, strict=True)]
    if entity_names == "colour":
        records = [name_by_colour(r) for r in records]
    return records


def prompts_and_targets(
    model_prompt: Any, records: Sequence[dict[str, Any]]
) -> tuple[list[str], list[str]]:
    """The prompt (``model_prompt``: PalmE.prompt or alike) and target of each record."""
    prompts = [
        model_prompt(
            r["instruction"],
            r["kind"],
            r["entities"],
            r["history"],
            r["history_success"],
            r["history_reasons"],
            r.get("rows"),
        )
        for r in records
    ]
    return prompts, [r["target"] for r in records]


def examples(
    model: PalmE,
    bank: FrameBank,
    index: Tensor | Sequence[int],
    inputs: InstructionInputs | None,
    draws: np.random.Generator,
    relabel: bool = False,
    resample: bool = False,
    rationales: bool = False,
    described: bool = False,
    asked: str | None = None,
    spread: float = 0.0,
) -> tuple[list[str], list[str], dict[str, Tensor]]:
    """Prompts, targets and the observation batch of these frames as ``model`` takes them:
    scenes described (``described``), or asked a question of family ``asked`` or their
    questions asked anew (``resample``), and q4 answers after their checks (``rationales``);
    entities relabelled (``relabel``), from ``draws``, and a ``spread`` fraction of them
    spread over the object rows; then the instructions through the model's instruction sensor
    (``inputs``: spoken, or an object pointed at)."""
    entity_names = model.config.entity_names
    records = frame_records(
        bank, index, draws, relabel, resample, entity_names, rationales, described, asked, spread
    )
    observation = bank.observations(torch.as_tensor(index))
    if inputs is not None:
        instructions, extra = inputs.prepare(
            [r["instruction"] for r in records],
            [r["entities"] for r in records],
            observation,
            draws,
        )
        records = [{**r, "instruction": t} for r, t in zip(records, instructions, strict=True)]
        observation = {**observation, **extra}
    if spread:
        observation = move_object_rows(observation, records)
    prompts, targets = prompts_and_targets(model.prompt, records)
    return prompts, targets, observation


def pretrain_lm(
    config: TrainConfig, bank: FrameBank, placement: str, n_tokens: int, directory: Path
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The default LM: tokenizer trained on the corpus, small Llama, text-only pretraining on
    every token of prompt + target. Reused when ``directory`` already holds it."""
    if (directory / "config.json").exists():
        return load_lm(directory)

    def text_prompt(
        instruction: str,
        kind: str,
        entities: list[str],
        history: list[str],
        success: list[bool],
        reasons: list[str],
        rows: list[int] | None,
    ) -> str:
        return prompt_text(
            instruction,
            kind,
            entities,
            history,
            success,
            placement,
            n_tokens,
            history_reasons=reasons if config.model.failure_reasons else (),
            rows=rows,
        )

    draws = np.random.default_rng(config.seed + 11)
    records = frame_records(
        bank,
        range(len(bank)),
        draws,
        config.relabel_entities,
        False,
        config.model.entity_names,
        spread=config.spread_rows,
    )
    prompts, targets = prompts_and_targets(text_prompt, records)
    tokenizer = train_tokenizer(
        [f"{p} {t}" for p, t in zip(prompts, targets, strict=True)], config.lm.vocab_size
    )
    lm = small_llama(config.lm, tokenizer)
    optimizer = torch.optim.AdamW(lm.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps = config.lm.pretrain_steps
    for step in tqdm(range(steps), desc="text pretraining", disable=not config.progress):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(
                config.lr, min(config.warmup_steps, steps // 2), steps, step
            )
        index = bank.draw(config.batch_size, config.seed + 7, step)
        encoded = encode(
            tokenizer,
            [prompts[int(i)] for i in index],
            [targets[int(i)] for i in index],
            config.model.max_length,
        )
        labels = encoded.input_ids.masked_fill(encoded.attention_mask == 0, IGNORE)
        loss = lm(
            input_ids=encoded.input_ids, attention_mask=encoded.attention_mask, labels=labels
        ).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(lm.parameters(), 1.0)
        optimizer.step()
    staging = directory.with_name(f"{directory.name}.new")
    shutil.rmtree(staging, ignore_errors=True)
    lm.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    staging.rename(directory)
    print(f"text-only LM pretrained for {steps} steps: {directory}", flush=True)
    return lm, tokenizer


def refuse_other_model(checkpoint: Path, model: ModelConfig) -> None:
    """Raise when a checkpoint to resume or fine-tune was trained with other model settings
    than ``model``: training on would teach (e.g.) colour names to a model that learned
    labels."""
    saved = asdict(ModelConfig(**json.loads((checkpoint / MODEL_CONFIG).read_text())))
    changed = [
        f"model.{name}={value!r} there, {getattr(model, name)!r} here"
        for name, value in saved.items()
        if getattr(model, name) != value
    ]
    if changed:
        raise ValueError(
            f"{checkpoint} was trained with other model settings ({', '.join(changed)}): "
            f"train on from it with the same ones, or start another model in another output_dir"
        )


def build_encoder(config: TrainConfig, bank: FrameBank | None) -> SensorEncoder:
    """The sensor encoder: from ``encoder_checkpoint``, or new and fitted to ``bank``'s frames
    (its input statistics; None leaves it unfitted)."""
    if config.encoder_checkpoint is not None:
        encoder = load_encoder(config.encoder_checkpoint)
        if encoder.name != config.encoder:
            raise ValueError(
                f"encoder_checkpoint={config.encoder_checkpoint} holds {encoder.name!r}, "
                f"not encoder={config.encoder!r}"
            )
        return encoder
    encoder = make_encoder(
        config.encoder, **encoder_fields(config.encoder, config.data, config.encoder_config)
    )
    if bank is not None:
        encoder.fit(bank.arrays)
    return encoder


def build_instruction_encoder(config: TrainConfig) -> SensorEncoder | None:
    """The instruction sensor's encoder (``model.instruction_sensor``): from
    ``instruction_encoder_checkpoint`` (its pretraining), or new; ``instruction_encoder_config``
    over either's config."""
    sensor = config.model.instruction_sensor
    if sensor is None:
        return None
    overrides = config.instruction_encoder_config
    if config.instruction_encoder_checkpoint is None:
        return make_encoder(sensor, **encoder_fields(sensor, config.data, overrides))
    encoder = load_encoder(config.instruction_encoder_checkpoint, **overrides)
    if encoder.name != sensor:
        raise ValueError(
            f"instruction_encoder_checkpoint={config.instruction_encoder_checkpoint} holds "
            f"{encoder.name!r}, not model.instruction_sensor={sensor!r}"
        )
    return encoder


def build_model(config: TrainConfig, bank: FrameBank, output_dir: Path) -> PalmE:
    """A fresh PaLM-E: the encoder (new or from ``encoder_checkpoint``), the LM, a projector;
    with an instruction sensor, its encoder and projector."""
    encoder = build_encoder(config, bank)
    if config.lm.path is not None:
        lm, tokenizer = load_lm(config.lm.path)
    else:
        lm, tokenizer = pretrain_lm(
            config, bank, PLACEMENTS[encoder.name], encoder.n_tokens, output_dir / LM_DIR
        )
    return PalmE(lm, tokenizer, encoder, config.model, build_instruction_encoder(config))


def start_from(checkpoint: Path, config: TrainConfig) -> PalmE:
    """The saved planner at ``checkpoint`` to train on: a checkpoint of this run to resume,
    or another run's planner to fine-tune (``init_checkpoint``). Its model settings and
    encoder must be ``config``'s."""
    refuse_other_model(checkpoint, config.model)
    model = PalmE.load(checkpoint, **asdict(config.model))
    if model.encoder.name != config.encoder:
        raise ValueError(
            f"{checkpoint} holds a {model.encoder.name!r} planner, not encoder="
            f"{config.encoder!r}: train on from it with the same encoder"
        )
    return model


SCENE_EVAL_FRAMES = 32
"""Held-out frames asked to describe their scene, when training does (``scene_descriptions``)."""


def instructions_heard(
    model: PalmE, config: TrainConfig, held_out: bool
) -> InstructionInputs | None:
    """How the instructions reach the model: through its instruction sensor, as transcripts
    of their speech (``config.recognizer``), or read (None); in held-out voices or training's."""
    if config.recognizer is not None:
        return transcribed_instructions(config.recognizer, held_out, config.spoken_variants)
    return instruction_inputs(model.instruction_encoder, held_out, config.spoken_variants)


def evaluate(
    model: PalmE, bank: FrameBank, config: TrainConfig, inputs: InstructionInputs | None
) -> dict[str, float]:
    """Held-out loss and exact-match accuracy of greedy decoding: for plan steps, answers, and
    each task family; with ``scene_descriptions``, also of the scene descriptions of the first
    ``SCENE_EVAL_FRAMES`` of those frames (``scene_accuracy``). ``inputs``: the instructions
    as the held-out evaluation hears them (``instructions_heard``)."""
    model.eval()
    index = bank.draw(config.eval_examples, config.seed + 1, 0, config.family_alpha)
    draws = np.random.default_rng(config.seed + 1)
    prompts, targets, observation = examples(
        model, bank, index, inputs, draws, rationales=config.question_rationales
    )
    losses: list[float] = []
    correct: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # name -> [right, seen]
    with torch.no_grad():
        for start in range(0, len(index), config.batch_size):
            chunk = slice(start, start + config.batch_size)
            encoded = encode(model.tokenizer, prompts[chunk], targets[chunk]).to(model.device)
            losses.append(float(model(encoded, _to(observation, model.device, chunk))))
        matches = _exact_matches(model, prompts, targets, observation, MAX_REPLY_TOKENS)
        for frame, match in zip(index, matches, strict=True):
            record = bank.records[int(frame)]
            for name in (record["kind"], record["family"]):
                correct[name][0] += match
                correct[name][1] += 1
        if config.scene_descriptions:
            described = index[:SCENE_EVAL_FRAMES]
            prompts, targets, observation = examples(
                model, bank, described, None, draws, described=True
            )
            longest = max(len(model.tokenizer(t).input_ids) for t in targets)
            matches = _exact_matches(model, prompts, targets, observation, longest + 1)
            correct[SCENE_FAMILY] = [sum(matches), len(matches)]
    model.train()
    metrics = {"eval_loss": round(sum(losses) / len(losses), 5)}
    for name, (right, seen) in sorted(correct.items()):
        metrics[f"{name}_accuracy"] = round(right / seen, 4)
    return metrics


def _exact_matches(
    model: PalmE,
    prompts: Sequence[str],
    targets: Sequence[str],
    observation: dict[str, Tensor],
    max_new_tokens: int,
) -> list[bool]:
    """Whether greedy decoding of each prompt (one at a time) writes exactly its target."""
    matches = []
    for i, (prompt, target) in enumerate(zip(prompts, targets, strict=True)):
        ids = encode(model.tokenizer, [prompt]).input_ids.to(model.device)
        embeddings = model.embed(ids, _to(observation, model.device, slice(i, i + 1)))
        tokens = greedy_decode(model.lm, embeddings, model.tokenizer.eos_token_id, max_new_tokens)
        matches.append(str(model.tokenizer.decode(tokens)).strip() == target)
    return matches


def _to(
    observation: dict[str, Tensor], device: torch.device, rows: slice | None = None
) -> dict[str, Tensor]:
    """The observation batch (its ``rows`` when given) on ``device``."""
    rows = rows if rows is not None else slice(None)
    return {key: value[rows].to(device) for key, value in observation.items()}


def _distributed(device: torch.device) -> tuple[int, int]:
    """(rank, world size): one process unless launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), world


def train(config: TrainConfig) -> dict[str, Any]:
    """Train the planner; returns the last metrics (rank 0)."""
    hf_logging.disable_progress_bar()
    device = torch.device(
        ("cuda" if torch.cuda.is_available() else "cpu")
        if config.device == "auto"
        else config.device
    )
    rank, world = _distributed(device)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    if config.batch_size % world:
        raise ValueError(f"batch_size={config.batch_size} must divide among {world} processes")
    torch.manual_seed(config.seed)
    output_dir = Path(config.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    arrays = [*ENCODERS[config.encoder].inputs, *arrays_read(config.model.instruction_sensor)]
    bank = FrameBank(config.data, config.split, arrays, config.families)
    eval_bank = FrameBank(config.data, config.eval_split, arrays, config.families)

    checkpoint = output_dir / CHECKPOINT
    found = latest_checkpoint(checkpoint) if config.resume else None
    if found is not None:
        model = start_from(found, config)
    elif config.init_checkpoint is not None:  # fine-tuning: every process loads the same one
        model = start_from(Path(config.init_checkpoint), config)
    else:
        if rank == 0:
            model = build_model(config, bank, output_dir)
        if world > 1:  # the others wait for rank 0's pretrained LM, then build the same model
            dist.barrier()
            if rank != 0:
                torch.manual_seed(config.seed)
                model = build_model(config, bank, output_dir)
    model.to(device).train()
    inputs = instructions_heard(model, config, held_out=False)
    held_out_inputs = instructions_heard(model, config, held_out=True)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.lr, weight_decay=config.weight_decay)
    start = load_trainer_state(found, optimizer) if found is not None else FRESH
    if found is not None and rank == 0:
        print(f"resuming {found} at step {start.step}", flush=True)
    # DistributedDataParallel starts every process from rank 0's weights (it broadcasts them).
    network: torch.nn.Module = DistributedDataParallel(model) if world > 1 else model
    if rank == 0:
        print(
            f"PaLM-E ({config.encoder}, {model.placement}): "
            f"{sum(p.numel() for p in model.parameters()):,} parameters, "
            f"{sum(p.numel() for p in trainable):,} trained; {len(bank)} training frames, "
            f"{len(eval_bank)} held-out; {world} process(es) on {device}",
            flush=True,
        )
    tokens_seen = 0
    described_per_step = round(config.scene_descriptions * config.batch_size)
    asked_per_step = {
        family: round(share * config.batch_size) for family, share in config.extra_questions.items()
    }
    askable = askable_frames(bank) if any(asked_per_step.values()) else torch.zeros(0)
    if any(asked_per_step.values()) and len(askable) < max(asked_per_step.values()):
        raise ValueError(
            f"extra_questions={config.extra_questions} asks up to "
            f"{max(asked_per_step.values())} frames a step; {config.data} holds "
            f"{len(askable)} tabletop frames with an empty hand"
        )

    def loss_at(at: int) -> torch.Tensor:
        nonlocal tokens_seen
        index = bank.draw(config.batch_size, config.seed, at, config.family_alpha)[rank::world]
        draws = np.random.default_rng([config.seed, at])  # relabels, voices, regions

        def frames(index: Tensor, **asked: Any) -> tuple[list[str], list[str], dict[str, Tensor]]:
            return examples(
                model,
                bank,
                index,
                inputs,
                draws,
                config.relabel_entities,
                rationales=config.question_rationales,
                spread=config.spread_rows,
                **asked,
            )

        prompts, targets, observation = frames(index, resample=config.resample_questions)
        if described_per_step:  # more frames, drawn equally from every family, described
            extra = bank.draw(described_per_step, config.seed + 3, at)[rank::world]
            more_prompts, more_targets, more = frames(extra, described=True)
            prompts, targets = prompts + more_prompts, targets + more_targets
            observation = {key: torch.cat([observation[key], more[key]]) for key in observation}
        for number, (family, size) in enumerate(sorted(asked_per_step.items())):
            # more frames, of any family, asked a question of this family
            chosen = np.random.default_rng([config.seed + 4, at, number]).choice(
                len(askable), size, replace=False
            )
            extra = askable[torch.from_numpy(chosen)][rank::world]
            more_prompts, more_targets, more = frames(extra, asked=family)
            prompts, targets = prompts + more_prompts, targets + more_targets
            observation = {key: torch.cat([observation[key], more[key]]) for key in observation}
        encoded = encode(model.tokenizer, prompts, targets, config.model.max_length)
        tokens_seen += int(encoded.attention_mask.sum())
        loss: torch.Tensor = network(encoded.to(device), _to(observation, device))
        return loss

    def measure(elapsed: float) -> dict[str, Any]:
        return {
            **evaluate(model, eval_bank, config, held_out_inputs),
            "tokens_per_s": round(tokens_seen * world / elapsed, 1),
        }

    metrics = optimize(
        config, config.steps, start, optimizer, loss_at, measure, model.save, output_dir, rank == 0
    )
    if rank == 0:
        model.save(output_dir / FINAL)
        (output_dir / FINAL / RUN_CONFIG).write_text(json.dumps(asdict(config), indent=2))
        manifest = json.loads((Path(config.data) / MANIFEST).read_text())
        trained_on = {"env": manifest["generator"]["env"]["id"], "data": config.data}
        (output_dir / FINAL / TRAINED_ON).write_text(json.dumps(trained_on, indent=2))
        print(f"done: {metrics}; model in {output_dir / FINAL}", flush=True)
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return metrics


@hydra.main(version_base="1.3", config_path=None, config_name="train")
def main(cfg: DictConfig) -> None:
    run_or_exit(train, to_config_or_exit(cfg))


if __name__ == "__main__":
    main()
