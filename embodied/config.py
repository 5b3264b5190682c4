"""Typed Hydra configs (structured configs in the ConfigStore), validated when converted.

Entry points call ``to_config(cfg)``: it turns the composed DictConfig into these dataclasses,
which runs every ``__post_init__`` check, so a bad override fails with the allowed values.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from embodied.data.splits import SPLITS
from embodied.entity_names import ENTITY_NAMES
from embodied.episode import EVAL_SEED_START
from embodied.planners import MISTAKE_PICKS, PLANNERS
from envs import KITCHEN_ID, TABLETOP_ID
from envs.kitchen import KitchenConfig, KitchenEnv
from envs.tabletop import TabletopConfig, TabletopEnv
from envs.tasks import TaskFamily
from policies.factory import SKILL_KINDS
from policies.learned_config import POLICY_CONFIG, SkillPolicyConfig

CHECKPOINTS = Path(__file__).resolve().parent / "checkpoints"
DEFAULT_PLANNER_CHECKPOINT = str(CHECKPOINTS / "palme")
"""The PaLM-E planner shipped with the repo for the tabletop (state tokens)."""
DEFAULT_KITCHEN_PLANNER_CHECKPOINT = str(CHECKPOINTS / "palme_kitchen")
"""The PaLM-E planner shipped for the kitchen (state tokens, trained with injected failures)."""
DEFAULT_PLANNER_CHECKPOINTS = {
    TABLETOP_ID: DEFAULT_PLANNER_CHECKPOINT,
    KITCHEN_ID: DEFAULT_KITCHEN_PLANNER_CHECKPOINT,
}
DECODING = ("free", "constrained")
FAILURE_DETECTION = ("skill", "model")
RECOGNITION = ("free", "constrained")


def check_recognizer(recognizer: str) -> None:
    """A speech recognizer is an encoder checkpoint directory (its ``encoder.json``)."""
    if not Path(recognizer, "encoder.json").exists():
        raise ValueError(
            f"recognizer={recognizer}: no encoder.json there; allowed the final/ of "
            "python -m embodied.train_encoder encoder=audio"
        )


TRAINED_ON = "trained_on.json"
"""Written into every final checkpoint by embodied.train: the env id of its training data."""


def check_planner_checkpoint(checkpoint: str, env_id: str) -> None:
    """Raise ValueError unless ``checkpoint`` is a PaLM-E checkpoint trained in ``env_id``."""
    path = Path(checkpoint)
    if not (path / "palme.json").exists():
        raise ValueError(
            f"checkpoint={checkpoint}: not a PaLM-E checkpoint (palme.json missing); train one "
            f"with python -m embodied.train (the shipped ones: python -m "
            f"experiments.train_default_planner --env tabletop|kitchen), or use planner=oracle"
        )
    trained_on = path / TRAINED_ON
    if trained_on.exists():
        env = json.loads(trained_on.read_text())["env"]
        if env != env_id:
            raise ValueError(
                f"checkpoint={checkpoint} was trained in {env}, not {env_id}: give a checkpoint "
                f"trained on {env_id} data, or planner=oracle"
            )


def check_skills_checkpoint(checkpoint: str | None, env_id: str) -> None:
    """Raise ValueError unless ``checkpoint`` is a learned-skills policy trained in ``env_id``."""
    if not checkpoint or not (Path(checkpoint) / POLICY_CONFIG).exists():
        raise ValueError(
            f"skills=learned needs skills_checkpoint=<dir with {POLICY_CONFIG}> (got "
            f"{checkpoint}): train one with python -m embodied.train_skills"
        )
    trained_in = json.loads((Path(checkpoint) / POLICY_CONFIG).read_text()).get("env", "")
    if trained_in and trained_in != env_id:
        raise ValueError(
            f"skills_checkpoint={checkpoint} learned from {trained_in} demonstrations, not "
            f"{env_id}: give a policy trained on {env_id} demonstrations, or skills=scripted"
        )


def check_tasks_and_splits(tasks: list[str], splits: list[str], env: Any) -> None:
    """Raise ValueError unless ``tasks`` are families of ``env`` (an env config) and ``splits``
    distinct known splits of it, each holding some of ``tasks``."""
    env_id = env.id
    unknown = [t for t in tasks if t not in env.families]
    if unknown or not tasks:
        raise ValueError(f"tasks={tasks}: allowed {sorted(env.families)} for {env_id}")
    for name in splits:
        if name not in SPLITS:
            raise ValueError(f"splits: {name!r} is unknown: allowed {list(SPLITS)}")
        if env_id not in SPLITS[name].worlds:
            allowed = [n for n, s in SPLITS.items() if env_id in s.worlds]
            raise ValueError(f"splits: {name!r} does not exist for {env_id}: allowed {allowed}")
        if not SPLITS[name].families(tasks):
            raise ValueError(
                f"splits: {name!r} holds only families whose instructions name single "
                f"objects, and tasks={tasks} has none"
            )
    if len(set(splits)) != len(splits) or not splits:
        raise ValueError(f"splits={list(splits)}: must be non-empty, without repeats")


def _make_kwargs(config: Any, fields: dict[str, Any]) -> dict[str, Any]:
    kwargs = {name: getattr(config, name) for name in fields}
    return {name: list(v) if isinstance(v, list) else v for name, v in kwargs.items()}


@dataclass
class TabletopEnvConfig(TabletopConfig):
    """The tabletop env: its registered id plus every TabletopConfig field."""

    id: str = TABLETOP_ID

    def make_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for gym.make (everything but the id)."""
        return _make_kwargs(self, TabletopConfig.__dataclass_fields__)

    @property
    def families(self) -> dict[str, TaskFamily[Any]]:
        return dict(TabletopEnv.families)


@dataclass
class KitchenEnvConfig(KitchenConfig):
    """The kitchen env: its registered id plus every KitchenConfig field."""

    id: str = KITCHEN_ID

    def make_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for gym.make (everything but the id)."""
        return _make_kwargs(self, KitchenConfig.__dataclass_fields__)

    @property
    def families(self) -> dict[str, TaskFamily[Any]]:
        return dict(KitchenEnv.families)


@dataclass
class EpisodesConfig:
    """What every entry point that runs closed-loop episodes shares: the world, the planner and
    how it decodes, the step budget and video cadence."""

    defaults: list[Any] = field(default_factory=lambda: ["_self_", {"env": "tabletop"}])
    env: Any = MISSING
    """The environment (config group ``env``: tabletop or kitchen)."""
    planner: str = "palme"
    """Who writes the plan: ``palme`` (the learned planner, ``checkpoint``) or ``oracle`` (the
    task's privileged oracle)."""
    checkpoint: str | None = None
    """planner=palme: a checkpoint from ``python -m embodied.train``; None (the default): the
    one shipped in the repo for the env (``DEFAULT_PLANNER_CHECKPOINTS``, trained by
    ``python -m experiments.train_default_planner [--env kitchen]``)."""
    decoding: str = "free"
    """planner=palme: ``free`` (PaLM-E's) or ``constrained`` to valid skill calls."""
    failure_detection: str = "skill"
    """planner=palme: mark failed steps by the skills' reports (``skill``) or by asking the
    model "Was pick(can) successful?" after each attempt (``model``)."""
    recognizer: str | None = None
    """planner=palme with a checkpoint that reads its instructions: a CTC speech encoder (the
    ``final/`` of ``python -m embodied.train_encoder encoder=audio``); the planner hears the
    instruction spoken in voices training never used and reads what the recognizer makes of it
    (``recognition``)."""
    recognition: str = "free"
    """With a ``recognizer``: ``free`` (greedy transcription, written back) or ``constrained``
    (the likeliest of the sentences the env's task families can pose in the scene, as command
    interfaces listen for their grammar; free for families that cannot list theirs)."""
    skills: str = "scripted"
    """What executes the plan's steps: ``scripted`` skills or ``learned`` (a behaviour-cloned
    policy, ``skills_checkpoint``)."""
    skills_checkpoint: str | None = None
    """skills=learned: the ``final/`` of ``python -m embodied.train_skills``."""
    video_every: int = 2
    """Keep every k-th control step as a video frame."""
    max_plan_steps: int = 24
    """Most skill calls per episode before it is cut off."""
    output_dir: str = "${hydra:runtime.output_dir}"
    """Where videos and the summary go (Hydra's run directory by default)."""

    def __post_init__(self) -> None:
        """Checks the shared fields; subclasses check theirs first, then call this (the
        checkpoint, which loads a file, is checked last)."""
        if self.planner not in PLANNERS:
            raise ValueError(f"planner={self.planner!r}: allowed {sorted(PLANNERS)}")
        if self.decoding not in DECODING:
            raise ValueError(f"decoding={self.decoding!r}: allowed {DECODING}")
        if self.failure_detection not in FAILURE_DETECTION:
            raise ValueError(
                f"failure_detection={self.failure_detection!r}: allowed {FAILURE_DETECTION}"
            )
        if self.recognition not in RECOGNITION:
            raise ValueError(f"recognition={self.recognition!r}: allowed {RECOGNITION}")
        if self.recognizer is not None:
            if self.planner != "palme":
                raise ValueError(
                    f"recognizer={self.recognizer} is read by planner=palme only "
                    f"(planner={self.planner!r})"
                )
            check_recognizer(self.recognizer)
        if self.skills not in SKILL_KINDS:
            raise ValueError(f"skills={self.skills!r}: allowed {SKILL_KINDS}")
        if self.skills == "learned":
            check_skills_checkpoint(self.skills_checkpoint, self.env.id)
        elif self.skills_checkpoint is not None:
            raise ValueError(
                f"skills_checkpoint={self.skills_checkpoint} is only read with skills=learned "
                f"(skills={self.skills!r})"
            )
        if self.video_every < 1:
            raise ValueError(f"video_every={self.video_every}: must be >= 1")
        if self.max_plan_steps < 1:
            raise ValueError(f"max_plan_steps={self.max_plan_steps}: must be >= 1")
        if self.env.id not in gym.registry:
            raise ValueError(f"env.id={self.env.id!r} is not a registered gymnasium id")
        if self.planner == "palme":
            check_planner_checkpoint(self.planner_checkpoint, self.env.id)

    @property
    def planner_checkpoint(self) -> str:
        """The checkpoint planner=palme loads: ``checkpoint``, or the one shipped for the env."""
        if self.checkpoint:
            return self.checkpoint
        if self.env.id not in DEFAULT_PLANNER_CHECKPOINTS:
            raise ValueError(
                f"checkpoint=null: no planner is shipped for {self.env.id} (only for "
                f"{sorted(DEFAULT_PLANNER_CHECKPOINTS)}); give checkpoint=<dir>"
            )
        return DEFAULT_PLANNER_CHECKPOINTS[self.env.id]


@dataclass
class RolloutConfig(EpisodesConfig):
    """``python -m embodied.rollout``: run and record closed-loop episodes."""

    task: str | None = None
    """Run only this task family (tabletop: p1, p2, q1-q4, sort, tower, line, pair, gather;
    kitchen: put_in_drawer, bring_from_cabinet, clear_counter, put_away, affordance,
    success_detection); None runs the families of env.tasks in turn."""
    episodes: int = 6
    """Number of episodes (the tabletop's default runs each TAMP family once)."""
    seed: int = EVAL_SEED_START
    """Seed of the first episode; episode i uses seed + i (evaluation seeds start at 100000)."""
    video: bool = True
    """Write one mp4 per episode."""

    def __post_init__(self) -> None:
        if self.task is not None and self.task not in self.env.families:
            raise ValueError(
                f"task={self.task!r}: allowed {sorted(self.env.families)} or null for {self.env.id}"
            )
        if self.episodes < 1:
            raise ValueError(f"episodes={self.episodes}: must be >= 1")
        if self.seed < 0:
            raise ValueError(f"seed={self.seed}: must be >= 0")
        super().__post_init__()


@dataclass
class EvaluateConfig(EpisodesConfig):
    """``python -m embodied.evaluate``: success rates on fixed seeds, per split and family."""

    tasks: list[str] | None = None
    """Task families to evaluate; None takes env.tasks."""
    splits: list[str] = field(default_factory=lambda: ["eval"])
    """Splits (embodied.data.splits.SPLITS): their fixed seed ranges and scene options, e.g.
    objects_8 (8 cubes) or colour_referral (objects named by colour). Episode i of a split uses
    the split's seed i, so every run sees the same scenes."""
    episodes: int = 20
    """Episodes per task family and split (families take turns)."""
    first_episode: int = 0
    """Each family's episodes start at its ``first_episode``-th of the split's (0: the first):
    ``first_episode=150 episodes=150`` measures 150 more per family, on other scenes than
    ``episodes=150`` (a replicate on fresh seeds)."""
    workers: int = 2
    """Worker processes (one env and one planner each); 1 runs in this process."""
    videos: int = 0
    """Record the first ``videos`` episodes of every split (mp4, in ``videos/``)."""

    def __post_init__(self) -> None:
        check_tasks_and_splits(self.family_names, self.splits, self.env)
        for name in ("episodes", "workers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)}: must be >= 1")
        if self.first_episode < 0:
            raise ValueError(f"first_episode={self.first_episode}: must be >= 0")
        if self.videos < 0:
            raise ValueError(f"videos={self.videos}: must be >= 0")
        super().__post_init__()

    @property
    def family_names(self) -> list[str]:
        return list(self.tasks if self.tasks is not None else self.env.tasks)


@dataclass
class GenerateConfig:
    """``python -m embodied.generate``: oracle episodes as sharded, balanced training data."""

    defaults: list[Any] = field(default_factory=lambda: ["_self_", {"env": "tabletop"}])
    env: Any = MISSING
    """The environment (config group ``env``: tabletop or kitchen); its image size, views and
    failure_rate shape the data."""
    tasks: list[str] | None = None
    """Task families to generate; None takes env.tasks. Families take turns over the scenes."""
    splits: list[str] = field(default_factory=lambda: ["train", "eval"])
    """Splits to generate (embodied.data.splits.SPLITS): train, eval, and for the tabletop
    objects_6, objects_8, unseen_colours, colour_referral."""
    episodes: int = 1000
    """Episodes of the train split."""
    eval_episodes: int = 200
    """Episodes of every other split."""
    shard_size: int = 50
    """Episodes per shard file: the unit of parallel work, of resuming and of slicing."""
    workers: int = 2
    """Worker processes (one env each); 1 generates in this process."""
    shards: str | None = None
    """Only this slice of the shard range, ``START:END`` (Python slice, END excluded): for SLURM
    array tasks or Ray jobs filling one dataset; None generates every shard not yet on disk."""
    plan_only: bool = False
    """Write the manifest (scene survey, balancing, shard plan) and stop."""
    balance: bool = True
    """Curate the scenes with MetaCLIP's algorithm over task family x scene configuration."""
    balance_threshold: int | None = None
    """MetaCLIP's t: an entry with count c in the candidate pool keeps each scene with
    probability min(1, t / c). None uses the median entry count of the pool."""
    pool_factor: float = 1.5
    """Candidate scenes surveyed per wanted episode before balancing (grown if too few are kept)."""
    seed: int = 0
    """Seed of the balancing draws (scene seeds come from the split)."""
    demos: bool = False
    """Also keep every skill call of every episode step by step (views, segmentation, proprio
    and the tool target commanded at each control step): behaviour-cloning demonstrations for
    the learned skills (``python -m embodied.train_skills``). Renders the views at every control
    step, so it is slower and its shards are larger."""
    demo_noise: float = 0.0
    """Metres: the standard deviation of a slowly drifting offset added to the tool target each
    scripted skill commands while it demonstrates (DART, Laskey et al., 2017). The arm then
    strays from the script's path and is pulled back, so the demonstrations show how to recover
    from the drift a learned policy makes; what is recorded is the script's own command. 0: none."""
    mistake_rate: float = 0.0
    """The share of the oracle's pick and place steps it gets wrong on purpose: it picks
    another object, or puts the held one elsewhere (``embodied.planners.MistakenOraclePlanner``),
    and the mistake runs in physics. The frame keeps the oracle's right step as its target and
    the mistake as what ran, so the planner learns the way back from states its own mistakes
    lead to, which an always-right oracle never visits. 0: none."""
    mistake_picks: str = "any"
    """Which object a mistaken pick takes (``MISTAKE_PICKS``): ``any`` other one, or
    ``blocked``: one that another object covers when the scene has one (the pick that fails in
    physics, the learned planner's most common p1 and p2 error), so that the data holds many
    "pick(x) failed: x is blocked by y" steps and the way back from them."""
    max_plan_steps: int = 24
    """Most skill calls per episode before it is cut off."""
    output_dir: str = "data/${hydra:runtime.choices.env}"
    """Where the manifest and the shards go; rerunning with the same config resumes there."""
    progress: bool = True
    """Show a progress bar."""

    def __post_init__(self) -> None:
        check_tasks_and_splits(self.family_names, self.splits, self.env)
        for name in ("episodes", "eval_episodes", "shard_size", "workers", "max_plan_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)}: must be >= 1")
        if self.demo_noise < 0 or (self.demo_noise and not self.demos):
            raise ValueError(
                f"demo_noise={self.demo_noise}: must be >= 0, and is only used with demos=true"
            )
        if not 0.0 <= self.mistake_rate < 1.0:
            raise ValueError(f"mistake_rate={self.mistake_rate}: must be in [0, 1)")
        if self.mistake_picks not in MISTAKE_PICKS:
            raise ValueError(f"mistake_picks={self.mistake_picks!r}: allowed {MISTAKE_PICKS}")
        if self.mistake_picks != "any" and not self.mistake_rate:
            raise ValueError(
                f"mistake_picks={self.mistake_picks!r} is only used with mistake_rate > 0"
            )
        if self.pool_factor < 1.0:
            raise ValueError(f"pool_factor={self.pool_factor}: must be >= 1")
        if self.balance_threshold is not None and self.balance_threshold < 1:
            raise ValueError(f"balance_threshold={self.balance_threshold}: must be >= 1 or null")
        self.shard_range()  # validates the slice

    @property
    def family_names(self) -> list[str]:
        return list(self.tasks if self.tasks is not None else self.env.tasks)

    def shard_range(self) -> slice:
        """``shards`` as a slice over shard indices (everything when None)."""
        if self.shards is None:
            return slice(0, None)
        start, sep, end = str(self.shards).partition(":")
        try:
            bounds = (int(start) if start else 0, int(end) if end else None)
        except ValueError:
            bounds = (-1, None)
        if not sep or bounds[0] < 0 or (bounds[1] is not None and bounds[1] <= bounds[0]):
            raise ValueError(
                f"shards={self.shards!r}: expected START:END with 0 <= START < END, e.g. 0:8"
            )
        return slice(*bounds)


@dataclass
class TrainingRun:
    """What every training entry point shares: optimisation, evaluation and checkpoint cadence,
    resuming."""

    batch_size: int = 32
    """Examples per optimizer step (for embodied.train: summed over all processes)."""
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 100
    """Linear learning-rate warm-up, then cosine decay to zero at the last step."""
    eval_every: int = 250
    checkpoint_every: int = 250
    seed: int = 0
    resume: bool = True
    """Continue from ``output_dir/checkpoint`` when it exists."""
    progress: bool = True

    def __post_init__(self) -> None:
        for name in ("batch_size", "eval_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)}: must be >= 1")
        if self.lr <= 0:
            raise ValueError(f"lr={self.lr}: must be > 0")
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps={self.warmup_steps}: must be >= 0")


@dataclass
class TrainEncoderConfig(TrainingRun):
    """``python -m embodied.train_encoder``: pretrain one sensor encoder on generated data."""

    encoder: str = "vit"
    """The encoder to pretrain (encoders.ENCODERS; those with a pretraining objective)."""
    model: dict[str, Any] = field(default_factory=dict)
    """Encoder config fields, e.g. ``+model.reduce=pool``; image_size and views default to the
    dataset's."""
    data: str = "data/tabletop"
    """A dataset written by ``python -m embodied.generate`` (vision encoders)."""
    utterances: int = 3000
    """audio: training utterances synthesized with espeak-ng (held-out: a tenth as many, from
    other scenes, voices settings and noise)."""
    split: str = "train"
    eval_split: str = "eval"
    steps: int | None = None
    """Optimizer steps; None takes the encoder's default (DEFAULT_ENCODER_STEPS)."""
    eval_batches: int = 4
    output_dir: str = "runs/encoder_${encoder}"
    """Checkpoints, metrics.jsonl and the final encoder (``final/``) go here; a checkpoint
    there is resumed when it holds the same encoder and model config."""

    def __post_init__(self) -> None:
        from encoders import ENCODERS

        trainable = sorted(n for n, c in ENCODERS.items() if c.pretrainable())
        if self.encoder not in trainable:
            hint = (
                " (the state MLP has no pretraining objective: it trains with the planner)"
                if self.encoder == "state"
                else ""
            )
            raise ValueError(f"encoder={self.encoder!r}: allowed {trainable}{hint}")
        super().__post_init__()
        if self.steps is not None and self.steps < 1:
            raise ValueError(f"steps={self.steps}: must be >= 1")
        if self.eval_batches < 1:
            raise ValueError(f"eval_batches={self.eval_batches}: must be >= 1")

    @property
    def total_steps(self) -> int:
        """``steps``, or the encoder's default."""
        return self.steps if self.steps is not None else DEFAULT_ENCODER_STEPS[self.encoder]


@dataclass
class LMConfig:
    """The planner's language model: a local Hugging Face directory, or the default small
    Llama built and pretrained on the task text here."""

    path: str | None = None
    """A directory holding a pretrained causal LM and its tokenizer (save_pretrained layout);
    None builds the default: a byte-level BPE tokenizer trained on the corpus, a small Llama,
    and ``pretrain_steps`` of text-only pretraining (the run's ``lm/`` directory)."""
    hidden: int = 192
    layers: int = 4
    heads: int = 4
    intermediate: int = 512
    max_positions: int = 512
    vocab_size: int = 640
    """Byte-level BPE vocabulary: 256 bytes, merges and the special tokens."""
    pretrain_steps: int = 400
    """Text-only pretraining steps of the default LM (batch ``batch_size``, lr ``lr``)."""

    def __post_init__(self) -> None:
        for name in ("hidden", "layers", "heads", "intermediate", "max_positions"):
            if getattr(self, name) < 1:
                raise ValueError(f"lm.{name}={getattr(self, name)}: must be >= 1")
        if self.hidden % self.heads:
            raise ValueError(f"lm.hidden={self.hidden} must be a multiple of lm.heads={self.heads}")
        if self.vocab_size < 300:
            raise ValueError(
                f"lm.vocab_size={self.vocab_size}: must be >= 300 (256 bytes + merges)"
            )
        if self.pretrain_steps < 0:
            raise ValueError(f"lm.pretrain_steps={self.pretrain_steps}: must be >= 0")


PROJECTORS = ("linear", "mlp")


INSTRUCTION_SENSORS = (None, "audio", "region")
"""``ModelConfig.instruction_sensor``: read the instruction (None), hear it, or see a region."""


@dataclass
class ModelConfig:
    """How the sensor meets the LM (stored with every checkpoint as ``palme.json``)."""

    projector: str = "linear"
    """``linear`` (PaLM-E's affine map) or ``mlp`` (two layers)."""
    freeze_lm: bool = False
    """Train the encoder and projector only; the LM's weights stay as loaded (PaLM-E's frozen
    mode)."""
    freeze_encoder: bool = False
    """Keep the sensor encoder as loaded (e.g. pretrained by embodied.train_encoder)."""
    freeze_instruction_backbone: bool = False
    """With an instruction sensor: keep its pretrained backbone as loaded (audio: the CTC
    speech encoder; region: the ViT) and train only what reads it out into tokens (audio: the
    queries that pool the utterance, as SALMONN trains its Q-Former over a frozen Whisper)."""
    max_length: int = 384
    """Longest example in tokens (prompt + target)."""
    mention_tokens: bool = True
    """Also put an object's token where the instruction names it ("How to grasp obj_3
    <obj_3>?"), besides PaLM-E's entity prefix ("obj_3 is <obj_3>.")."""
    keep_placeholder: bool = True
    """Add each sensor token to its placeholder's own learned embedding (``<obj_3>`` then also
    says which object it is, and the question's ``obj_3`` finds it in one attention hop);
    false replaces the embedding outright, as PaLM-E does."""

    entity_prefix: bool = True
    """PaLM-E's entity referrals: "obj_1 is <obj_1>. obj_2 is <obj_2>. ..." before the question.
    False lists the object tokens unnamed ("Scene: <obj_1><obj_2>..."), the ablation of PaLM-E's
    Table 7; it needs mention_tokens and keep_placeholder off, which would name the tokens."""
    instruction_sensor: str | None = None
    """A second sensor, beside the scene's, for the instruction itself: ``audio`` hears it
    spoken by espeak-ng, its tokens taking the instruction's place (SALMONN-style speech input;
    ``embodied.data.speech``); ``region`` sees one object it names pointed at on a view, by a
    point, a box or a mask, Ferret's coordinates and feature token taking the name's place
    (``embodied.data.regions``). None: the instruction is read as text."""
    entity_names: str = "label"
    """What the model calls the tabletop's cubes: ``label``, the scene's obj_j (bound to a cube
    only by its per-object token), or ``colour``, each cube's colour ("pick(red)"), which an
    image shows: the names for planners that see the scene as an image (ViT, OSRT). See
    ``embodied.entity_names``."""
    failure_reasons: bool = False
    """Show why a step of the history failed, as its skill reported it ("pick(obj_2) [failed:
    obj_2 is blocked by obj_4]"), not only that it did (" [failed]"): Inner Monologue's success
    feedback with its cause, so that the planner can clear the blocker it names. The planner
    has reasons only from the skills (``failure_detection=skill``)."""

    def __post_init__(self) -> None:
        if not self.entity_prefix and (self.mention_tokens or self.keep_placeholder):
            raise ValueError(
                "model.entity_prefix=false needs model.mention_tokens=false and "
                "model.keep_placeholder=false: both tell the LM which token is which object"
            )
        if self.projector not in PROJECTORS:
            raise ValueError(f"model.projector={self.projector!r}: allowed {PROJECTORS}")
        if self.max_length < 8:
            raise ValueError(f"model.max_length={self.max_length}: must be >= 8")
        if self.instruction_sensor not in INSTRUCTION_SENSORS:
            raise ValueError(
                f"model.instruction_sensor={self.instruction_sensor!r}: allowed "
                f"{INSTRUCTION_SENSORS}"
            )
        if self.freeze_instruction_backbone and self.instruction_sensor is None:
            raise ValueError(
                "model.freeze_instruction_backbone=true needs model.instruction_sensor "
                f"(one of {[s for s in INSTRUCTION_SENSORS if s is not None]})"
            )
        if self.entity_names not in ENTITY_NAMES:
            raise ValueError(f"model.entity_names={self.entity_names!r}: allowed {ENTITY_NAMES}")
        if self.entity_names != "label" and self.instruction_sensor is not None:
            raise ValueError(
                f"model.entity_names={self.entity_names!r} needs model.instruction_sensor=null: "
                "the speech corpus and the region referrals name cubes by their labels (obj_j)"
            )


@dataclass
class TrainConfig(TrainingRun):
    """``python -m embodied.train``: train the PaLM-E planner on generated episodes."""

    encoder: str = "state"
    """The sensor (encoders.ENCODERS): state, object_centric, vit, osrt, ..."""
    encoder_config: dict[str, Any] = field(default_factory=dict)
    """Encoder config fields (``+encoder_config.dim=64``); image_size and views default to the
    dataset's."""
    encoder_checkpoint: str | None = None
    """Start the encoder from this directory (e.g. runs/encoder_object_centric/final)."""
    init_checkpoint: str | None = None
    """Fine-tune: start the whole planner (LM, tokenizer, encoder, projectors) from this
    saved planner (a ``final/`` directory, or ``embodied/checkpoints/palme``) instead of a new
    one; its model settings must be ``model``'s. The optimizer and the learning-rate schedule
    start afresh (``lr``, ``warmup_steps``, ``steps``)."""
    instruction_encoder_checkpoint: str | None = None
    """With ``model.instruction_sensor``: start its encoder from this directory (its
    pretraining: runs/encoder_audio/final, runs/encoder_region/final); None: a new one."""
    recognizer: str | None = None
    """A CTC speech encoder (``runs/encoder_audio/final``) in front of a planner that reads:
    training reads each instruction as the recognizer transcribes one of ``spoken_variants``
    recordings of it, so the planner learns the recognizer's mistakes; evaluate it with the
    same ``recognizer=``. None: instructions are read as written (or heard by
    ``model.instruction_sensor``)."""
    spoken_variants: int = 32
    """With ``model.instruction_sensor=audio`` or a ``recognizer``: the ways (voice, speed,
    pitch, noise) training speaks each instruction in. The tabletop has ~150 distinct
    instruction texts; heard in 4 ways each, the spoken planner learned them by heart
    (training loss 0.25, held-out loss flat at 0.37-0.39 from step 250 to 2250, in other
    voices)."""
    instruction_encoder_config: dict[str, Any] = field(default_factory=dict)
    """The instruction encoder's config fields (``+instruction_encoder_config.pooling=windows``),
    over its checkpoint's when it starts from one (there, only fields that shape no weight)."""
    lm: LMConfig = field(default_factory=LMConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: str = "data/tabletop"
    """A dataset written by ``python -m embodied.generate``."""
    split: str = "train"
    eval_split: str = "eval"
    families: list[str] | None = None
    """Train on these task families only; None mixes every family of the dataset."""
    family_alpha: float = 0.5
    """How batches mix the task families: a family with n frames gets a share ~ n ** alpha
    (temperature sampling, as XLM and mT5 mix languages), for training and held-out batches
    (the text-only LM pretraining reads every frame equally). 1 draws frames uniformly: the
    planning families, with 2-6 frames per episode against a question's one, then fill ~2/3 of
    every batch, and the colour questions (q1) were not learned in 3000 steps; 0 (every family
    equal) learned q1 but left the plans at 0.6 exact match after 2000 steps."""
    relabel_entities: bool = False
    """Rename each training example's obj_j entities to random distinct labels of obj_1..obj_8
    (``embodied.train.relabel_entities``), so that the planner learns to write every label the
    entity prefix may bind, not only the obj_1..obj_5 of 1-5-object training scenes. Needs
    ``model.entity_prefix`` (without it nothing binds a label to its object)."""
    spread_rows: float = 0.0
    """The fraction of tabletop training examples whose object rows move to random distinct
    rows of the state sensor's 8 (``embodied.train.spread_rows``), their prompt's placeholders
    with them ("obj_2 is <obj_7>."); the others keep rows 0..n-1. Scenes fill rows 0..n-1, so
    1-5-object training leaves rows 5-7 unread, their placeholders' embeddings and the support
    relation's one-hot columns for them as initialized, and 6- and 8-object scenes feed those
    untrained weights. Needs ``encoder=state``. Held-out evaluation keeps the scenes' own
    rows. Measured at 1 over 8000 steps (RESULTS.md): 8-object p2 0.92 against 0.72, but q2
    0.69 and q4 0.80 on 8 objects against 0.98 and 0.90."""
    resample_questions: bool = False
    """Ask each training question frame (tabletop q1-q4) a question drawn anew by its family
    from the frame's symbolic state (``embodied.train.resample_question``), with its answer:
    a scene holds many questions and an episode asks one (3000 steps on the 5000-episode
    corpus show each of its 825 q4 questions ~15 times). Held-out evaluation keeps the
    episodes' questions. Measured (``palme_studies --study question_resampling``, 50 episodes
    per family): q4 0.68 against 0.84 without, all families 0.92 against 0.95; so off."""
    question_rationales: bool = False
    """Train q4 answers after the checks of PaLM-E's rule, from the frame's symbolic state
    (``embodied.train.explain_answer``): "obj_1 is on top. obj_4 is on top. then obj_4 is
    below obj_1. no", the same three checks for a feasible sequence. The state rows hold
    poses, not which cube rests on which: each check is one such relation, and the answer
    follows from them (in words the tokenizer holds as tokens: "clear" would be four).
    Every q4 target has nearly the same length, since each example's loss is its tokens' mean:
    the first form, which explained only infeasible answers ("obj_2 is on top of obj_1. no"),
    gave the yes/no decision of a "no" target a fifth of the weight of a "yes" one, and its
    planner answered "yes" to 19 of 26 infeasible questions (q4 0.62 on 50 episodes, commit
    71f9b57). A reply's last sentence is its answer (``envs.tasks.base.final_answer``);
    held-out exact match is of the whole reply."""
    scene_descriptions: float = 0.0
    """Beyond PaLM-E (its co-training on other tasks, here of the same scenes): add this
    fraction of ``batch_size`` examples to every batch, frames drawn equally from every family
    and asked which cube rests on which (``embodied.train.describe_scene``), answered from the
    frame's symbolic state in the words of the q4 checks: "obj_1 is below obj_4. obj_2 is on
    top. obj_4 is on top". Tabletop corpora only; no instruction sensor (the question is a
    fixed text). The q4 checks misread that relation from the state rows' poses; this
    supervises it on every frame, not on the q4 frames alone. Measured at 0.25 on top of the
    best planner (``palme_studies --study question_resampling``, 50 episodes per family): q4
    0.90 against 0.92, q1 0.12 against 1.00 (wrong colours); so off."""
    extra_questions: dict[str, float] = field(default_factory=dict)
    """Beyond PaLM-E (more of its own tasks, asked of more scenes): family (q1-q4) -> the
    fraction of ``batch_size`` examples added to every batch, frames of any tabletop family
    with an empty hand asked a question of that family drawn from their symbolic state
    (``embodied.train.ask_question``; q4 with its checks when ``question_rationales`` is on).
    On the command line ``+extra_questions.q4=0.25`` or ``+extra_questions={q4:0.25,q1:0.125}``:
    the ``+`` adds keys to the empty default, which Hydra's struct mode refuses without it.
    The corpus asks each family of ~825 scenes, one question each; the plans pass through
    ~7000 empty-hand scenes. Measured with ``{q4: 0.25}`` on the best recipe (``palme_studies
    --study question_resampling``, 50 episodes per family): q4 0.90 against 0.92, all families
    0.98 (p1, p2 1.00), the questions whose third cube is the base now right; with the support
    relation as input too, q4 0.98 but q1 0.12."""
    steps: int = 3000
    eval_examples: int = 128
    """Held-out frames per evaluation: their loss, and how often greedy decoding writes exactly
    the target step or answer."""
    device: str = "auto"
    """``auto`` (cuda when present), ``cpu`` or ``cuda``."""
    output_dir: str = "runs/planner_${encoder}"
    """``lm/`` (the pretrained default LM), ``checkpoint/``, ``final/``, metrics.jsonl."""

    def __post_init__(self) -> None:
        from encoders import ENCODERS

        super().__post_init__()
        if self.encoder not in ENCODERS:
            raise ValueError(f"encoder={self.encoder!r}: allowed {sorted(ENCODERS)}")
        for name in ("steps", "eval_examples", "spoken_variants"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)}: must be >= 1")
        if not 0.0 <= self.family_alpha <= 1.0:
            raise ValueError(f"family_alpha={self.family_alpha}: must be in [0, 1]")
        if self.relabel_entities and self.model.entity_names != "label":
            raise ValueError(
                "relabel_entities=true needs model.entity_names=label: it draws new obj_j "
                f"labels, and model.entity_names={self.model.entity_names!r} names cubes otherwise"
            )
        if self.relabel_entities and not self.model.entity_prefix:
            raise ValueError(
                "relabel_entities=true needs model.entity_prefix=true: only the entity prefix "
                "tells the LM which object a relabelled obj_j is"
            )
        if not 0.0 <= self.spread_rows <= 1.0:
            raise ValueError(f"spread_rows={self.spread_rows}: a fraction, must be in [0, 1]")
        if self.spread_rows and self.encoder != "state":
            raise ValueError(
                f"spread_rows={self.spread_rows} needs encoder=state (it moves the state's "
                f"object rows); encoder={self.encoder!r}"
            )
        if self.init_checkpoint is not None:
            from embodied.model import MODEL_CONFIG

            if self.encoder_checkpoint is not None:
                raise ValueError(
                    f"init_checkpoint={self.init_checkpoint} with encoder_checkpoint="
                    f"{self.encoder_checkpoint}: the planner brings its own encoder; set one"
                )
            if not (Path(self.init_checkpoint) / MODEL_CONFIG).is_file():
                raise ValueError(
                    f"init_checkpoint={self.init_checkpoint}: no saved planner there (no "
                    f"{MODEL_CONFIG}); give a planner's final/ directory"
                )
        sensor = self.model.instruction_sensor
        if self.instruction_encoder_checkpoint is not None and sensor is None:
            raise ValueError(
                f"instruction_encoder_checkpoint={self.instruction_encoder_checkpoint} needs "
                "model.instruction_sensor=audio|region: the planner reads its instructions"
            )
        if self.recognizer is not None:
            if sensor is not None:
                raise ValueError(
                    f"recognizer={self.recognizer} with model.instruction_sensor={sensor}: a "
                    "recognizer goes in front of a planner that reads its instructions"
                )
            check_recognizer(self.recognizer)
        if self.instruction_encoder_config and sensor is None:
            raise ValueError(
                f"instruction_encoder_config={self.instruction_encoder_config} needs "
                "model.instruction_sensor=audio|region: the planner reads its instructions"
            )
        if sensor is not None and self.encoder in INSTRUCTION_SENSORS:
            raise ValueError(
                f"model.instruction_sensor={sensor} with encoder={self.encoder}: the scene "
                "sensor must be state, object_centric, vit or osrt"
            )
        if not 0.0 <= self.scene_descriptions <= 1.0:
            raise ValueError(f"scene_descriptions={self.scene_descriptions}: must be in [0, 1]")
        if self.scene_descriptions and sensor is not None:
            raise ValueError(
                f"scene_descriptions={self.scene_descriptions} with model.instruction_sensor="
                f"{sensor}: the description's question is text; set scene_descriptions=0"
            )
        asked_families = ("q1", "q2", "q3", "q4")
        for family, share in self.extra_questions.items():
            if family not in asked_families:
                raise ValueError(
                    f"extra_questions: family {family!r}: allowed {list(asked_families)}"
                )
            if not 0.0 <= share <= 1.0:
                raise ValueError(f"extra_questions.{family}={share}: must be in [0, 1]")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device={self.device!r}: allowed auto, cpu, cuda")


@dataclass
class TrainSkillsConfig(TrainingRun):
    """``python -m embodied.train_skills``: behaviour-clone the learned skills from the scripted
    skills' demonstrations."""

    data: str = "data/tabletop_demos"
    """A dataset written by ``python -m embodied.generate demos=true``."""
    policy: SkillPolicyConfig = field(default_factory=SkillPolicyConfig)
    """The network (``policies.learned``); its views and image size are the dataset's."""
    batch_size: int = 64
    steps: int = 8000
    eval_every: int = 500
    checkpoint_every: int = 500
    done_weight: float = 1.0
    """Weight of a done step in the done loss (policies.learned.DONE_STEPS of a demonstration's
    ~40 steps are done). Above 1 it biases the policy to stop early: 10 stopped most picks
    before the grasp."""
    shift: int = 4
    """Pixels by which training images (and their masks) are shifted at random, every view on
    its own (DrQ's augmentation): the policy must not rely on exact pixel positions. 0: none."""
    output_dir: str = "runs/skills"
    """Checkpoints, metrics.jsonl and the final policy (``final/``) go here."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.steps < 1:
            raise ValueError(f"steps={self.steps}: must be >= 1")
        if self.done_weight <= 0:
            raise ValueError(f"done_weight={self.done_weight}: must be > 0")
        if self.shift < 0:
            raise ValueError(f"shift={self.shift}: must be >= 0")


DEFAULT_ENCODER_STEPS = {
    "vit": 1500,
    "object_centric": 1500,
    "region": 1500,
    "osrt": 1500,
    "audio": 750,
}
"""Pretraining steps at the defaults: each but OSRT fits in about 20 minutes on 2 CPU cores
(audio's long utterances make a step about 1.4 s, hence fewer; OSRT's 1500 take about 40)."""


def register_configs() -> None:
    store = ConfigStore.instance()
    store.store(name="rollout", node=RolloutConfig)
    store.store(name="evaluate", node=EvaluateConfig)
    store.store(name="generate", node=GenerateConfig)
    store.store(name="train_encoder", node=TrainEncoderConfig)
    store.store(name="train", node=TrainConfig)
    store.store(name="train_skills", node=TrainSkillsConfig)
    store.store(group="env", name="tabletop", node=TabletopEnvConfig)
    store.store(group="env", name="kitchen", node=KitchenEnvConfig)


def to_config(cfg: DictConfig) -> Any:
    """DictConfig -> validated dataclasses (raises ValueError naming the bad field)."""
    return OmegaConf.to_object(cfg)


def to_config_or_exit(cfg: DictConfig) -> Any:
    """``to_config`` for entry points: a bad value prints what was wrong and what is allowed, and
    exits with status 2 (no traceback)."""
    try:
        return to_config(cfg)
    except ValueError as error:
        print(f"error: bad configuration: {error}", file=sys.stderr)
        sys.exit(2)
