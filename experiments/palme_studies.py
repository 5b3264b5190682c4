"""PaLM-E's planner studies at small scale, in physics: one command per study.

    python -m experiments.palme_studies --study decoding          # free vs constrained
    python -m experiments.palme_studies --study entity_referrals  # and 6 / 8 objects, colours
    python -m experiments.palme_studies --study frozen_lm         # frozen vs finetuned LM
    python -m experiments.palme_studies --study representations   # state, ViT, object-centric,
                                                                   #   OSRT at ~1% and full data
    python -m experiments.palme_studies --study instruction_sensors  # read, heard, pointed at
    python -m experiments.palme_studies --study question_resampling --episodes 50  # q1-q4 data
    python -m experiments.palme_studies --study failure_recovery  # corpora with failures, mistakes
    python -m experiments.palme_studies --study decoding --quick  # smoke run: tiny everything
    python -m experiments.palme_studies --study representations --variants vit_full vit_1pct

Every variant is a planner trained by ``embodied.train`` (``runs/study_<variant>``: a finished
run is only evaluated, an interrupted one resumes) and evaluated by ``embodied.evaluate`` on the
fixed seeds of each split the study names (every family of the default tabletop in turn,
``--episodes`` per family and split). The state-token planner on the full corpus at
``embodied.train``'s defaults (``runs/planner_state``, BASELINE_RUN) is the baseline the
studies vary; it was the shipped planner until 2026-12-06.
Each variant trains on one of CORPORA, generated on first use.

The planners that see the scene as an image (ViT, OSRT) name cubes by colour, not by their
obj_j labels, which no image shows (COLOUR_NAMES, ``embodied.entity_names``); their q1 ("What
colour is red?") then answers itself.

The "pretrained LLM" every variant starts from is the same for all corpora: the small Llama
pretrained on the text of the full corpus in the variant's prompt format and entity names
(``runs/lm_<data>_<encoder>[_colour_names]``), as PaLM-E's LLM is pretrained once, whatever
the robot data. Vision encoders start from their pretraining
(``runs/encoder_<name>/final`` from ``experiments.pretrain_encoders``; a missing one is an
error naming that command, since a row trained from scratch would not compare); the OSRT
planners start from ``runs/encoder_osrt_rgbd_slot_mixer/final`` (OSRT with depth and the slot
mixer decoder, pretrained on the zoomed views) and train and run on those views; a planner
with an instruction sensor starts it from ``runs/encoder_audio/final`` or
``runs/encoder_region/final``, which the study pretrains first (``embodied.train_encoder``, at
the encoder's defaults) when it is missing.

Results: ``experiments/results/study_<study>.json``, ``.md`` (success per family and split
with 95% intervals, training and evaluation wall time) and ``.png`` (overall success per
variant and split).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from embodied.config import (
    EvaluateConfig,
    GenerateConfig,
    LMConfig,
    ModelConfig,
    TabletopEnvConfig,
    TrainConfig,
    TrainEncoderConfig,
)
from embodied.data.dataset import MANIFEST
from embodied.data.frames import FrameBank
from embodied.evaluate import evaluate
from embodied.generate import generate
from embodied.model import MODEL_CONFIG
from embodied.sentence import PLACEMENTS
from embodied.train import FINAL, build_encoder, pretrain_lm, train
from embodied.train_encoder import train as train_encoder
from embodied.training import CHECKPOINT, last_metrics, latest_checkpoint, trained_seconds
from encoders import ENCODERS, make_encoder
from experiments.common import RESULTS_DIR, machine, merge_rows, write_results


@dataclass(frozen=True)
class Corpus:
    """A training corpus of the default tabletop, written by ``embodied.generate``."""

    path: str
    episodes: int
    failure_rate: float = 0.0
    """The env's injected skill failures while generating (``TabletopEnvConfig.failure_rate``):
    the oracle's plans then continue from the state a failed step left."""
    views: tuple[str, ...] | None = None
    """The cameras (``TabletopEnvConfig.views``), in training and in evaluation; None: the
    env's default views."""
    steps: int | None = None
    """Training steps on this corpus; None: ``TrainConfig``'s default."""
    mistake_rate: float = 0.0
    """The oracle's deliberate wrong pick and place steps while generating
    (``GenerateConfig.mistake_rate``): the frames show the way back from them."""
    mistake_picks: str = "any"
    """Which object a mistaken pick takes (``GenerateConfig.mistake_picks``)."""


SMALL_STEPS = 1000
"""Steps at ~1% of the data: 3000 would revisit each of its ~90 frames a thousand times."""
ZOOM_VIEWS = ("front_zoom", "left_zoom", "right_zoom")
"""The default cameras narrowed to the workspace, the views OSRT is pretrained on
(``experiments.osrt_views``: a cube covers ~38 px of a view there, ~17 in the default ones)."""
CORPORA = {
    "full": Corpus("data/tabletop_5k", 5000),
    "1pct": Corpus("data/tabletop_50", 50, steps=SMALL_STEPS),
    "failures": Corpus("data/tabletop_5k_failures", 5000, failure_rate=0.1),
    "mistakes": Corpus("data/tabletop_5k_mistakes", 5000, mistake_rate=0.1),
    "blocked_pick_mistakes": Corpus(
        "data/tabletop_5k_blocked_pick_mistakes", 5000, mistake_rate=0.1, mistake_picks="blocked"
    ),
    "full_zoom": Corpus("data/tabletop_5k_zoom", 5000, views=ZOOM_VIEWS),
    "1pct_zoom": Corpus("data/tabletop_50_zoom", 50, views=ZOOM_VIEWS, steps=SMALL_STEPS),
}
"""Name -> corpus: the full one of the baseline; about 1% of it (PaLM-E's
data-efficiency axis); as many episodes with a tenth of the skill calls failing, so that the
histories hold failed steps and the recoveries that follow them (the baseline's p2
misses start with a blocked pick it then never recovers from); as many episodes in which the
oracle itself gets a tenth of its picks and places wrong, each frame still labelled with the
right step, so that the planner sees the way back from a blocked pick; the same with the
mistaken picks aimed at covered cubes (157 failed picks in its training episodes against 83:
p1 did not improve, RESULTS.md); the full and 1% corpora seen by the zoomed cameras, for the
OSRT planners, whose encoder is pretrained on those views."""
BASELINE_RUN = "runs/planner_state"
"""The studies' baseline: the state planner at ``embodied.train``'s defaults on the full corpus
(trained here when missing, from the shared LM). It was the shipped planner until 2026-12-06;
the shipped one now comes from ``experiments.train_default_planner``'s recipe."""
NO_REFERRALS = ModelConfig(entity_prefix=False, mention_tokens=False, keep_placeholder=False)
HEARD = ModelConfig(instruction_sensor="audio")
POINTED_AT = ModelConfig(instruction_sensor="region")
COLOUR_NAMES = ModelConfig(entity_names="colour")
"""The image planners' names for cubes: an image shows a cube's colour, never its obj_j label
(``embodied.entity_names``)."""


@dataclass(frozen=True)
class Variant:
    """One planner of a study: how it is trained, and how it is evaluated."""

    name: str
    corpus: str = "full"
    """A key of CORPORA: the training corpus (``1pct`` also trains SMALL_STEPS steps)."""
    train: dict[str, Any] = field(default_factory=dict)
    """TrainConfig fields beyond the defaults."""
    evaluate: dict[str, Any] = field(default_factory=dict)
    """EvaluateConfig fields (decoding, ...)."""
    run: str | None = None
    """The run directory; None: ``runs/study_<name>``."""
    transcribed: bool = False
    """Its instructions spoken and transcribed by the audio encoder pretrained under
    ``--runs`` (``recognizer``), in evaluation and, when it trains, in training: speech
    recognition in front of a planner that reads."""
    encoder_run: str | None = None
    """The run under ``--runs`` whose ``final`` the encoder starts from (``experiments.
    pretrain_encoders`` writes it; a missing one is an error); None: ``encoder_<encoder>``."""
    fine_tunes: str | None = None
    """Another variant of the study, whose final planner this one starts from
    (``init_checkpoint``) and trains on with its own fields: train that one first."""

    @property
    def run_dir(self) -> str:
        return self.run or f"runs/study_{self.name}"


GENERALIZATION_SPLITS = ["eval", "objects_6", "objects_8", "unseen_colours", "colour_referral"]
SUPPORT_RELATION_COLOUR_RECIPE: dict[str, Any] = {
    "encoder_config": {"support_relations": True},
    "model": ModelConfig(failure_reasons=True),
    "question_rationales": True,
    "extra_questions": {"q4": 0.25, "q1": 0.125},
}
"""``TrainConfig`` fields beyond the defaults, on the blocked-pick corpus: the support relation
in the state rows, failed steps with the skill's reason, q4 answered after its rule's checks,
and q4 and q1 also asked of every scene."""
SHIPPED_RECIPE: dict[str, Any] = {**SUPPORT_RELATION_COLOUR_RECIPE, "relabel_entities": True}
"""The shipped tabletop planner's first stage (``experiments.train_default_planner``): the
recipe above with each example's entities renamed at random, trained SHIPPED_STEPS steps."""
SHIPPED_STEPS = 8000
SPREAD_FINE_TUNING: dict[str, Any] = {
    "spread_rows": 0.5,
    "steps": 1500,
    "lr": 3e-4,
    "warmup_steps": 50,
}
"""The shipped planner's second stage: the first stage's planner trained on with half of each
batch's scenes spread over the state sensor's 8 rows, since 1-5-object training leaves rows
6-8 untrained and spreading every scene from the start cost the relation questions (8-object
q2 0.69). Measured: 8 objects 0.930 against 0.895 (100 per family); every family at its
target on the first 150 per family, p2 0.947 over 300 (0.963 before it)."""


STUDIES: dict[str, tuple[list[str], list[Variant]]] = {
    "decoding": (
        ["eval", "objects_8"],
        [
            Variant("state_free", run=BASELINE_RUN, evaluate={"decoding": "free"}),
            Variant("state_constrained", run=BASELINE_RUN, evaluate={"decoding": "constrained"}),
        ],
    ),
    "entity_referrals": (
        GENERALIZATION_SPLITS,
        [
            Variant("state_entity_referrals", run=BASELINE_RUN),
            Variant("state_no_entity_referrals", train={"model": NO_REFERRALS}),
            Variant("state_relabelled_entities", train={"relabel_entities": True}),
            Variant(
                "state_relabelled_entities_shipped_recipe",
                "blocked_pick_mistakes",
                {**SHIPPED_RECIPE, "steps": SHIPPED_STEPS},
            ),
            Variant(
                "state_spread_rows_shipped_recipe",
                "blocked_pick_mistakes",
                {**SHIPPED_RECIPE, "spread_rows": 1.0, "steps": SHIPPED_STEPS},
            ),
            Variant(
                "state_spread_rows_fine_tuned",
                "blocked_pick_mistakes",
                {**SHIPPED_RECIPE, **SPREAD_FINE_TUNING},
                fine_tunes="state_relabelled_entities_shipped_recipe",
            ),
            Variant(
                "state_spread_rows_fine_tuned_lr_1e-4",
                "blocked_pick_mistakes",
                {**SHIPPED_RECIPE, **SPREAD_FINE_TUNING, "lr": 1e-4},
                fine_tunes="state_relabelled_entities_shipped_recipe",
            ),
        ],
    ),
    "frozen_lm": (
        ["eval"],
        [
            Variant("state_finetuned_lm", run=BASELINE_RUN),
            Variant("state_frozen_lm", train={"model": ModelConfig(freeze_lm=True)}),
        ],
    ),
    "instruction_sensors": (
        ["eval"],
        [
            Variant("state_text_instructions", run=BASELINE_RUN),
            Variant("state_transcribed_instructions", run=BASELINE_RUN, transcribed=True),
            Variant(
                "state_recognized_instructions",
                run=BASELINE_RUN,
                transcribed=True,
                evaluate={"recognition": "constrained"},
            ),
            Variant("state_trained_on_transcripts", transcribed=True),
            Variant("state_spoken_instructions", train={"model": HEARD, "spoken_variants": 4}),
            Variant("state_spoken_voices", train={"model": HEARD}),
            Variant(
                "state_spoken_windows",
                train={"model": HEARD, "instruction_encoder_config": {"pooling": "windows"}},
            ),
            Variant(
                "state_spoken_frozen_windows",
                train={
                    "model": replace(HEARD, freeze_instruction_backbone=True),
                    "instruction_encoder_config": {"pooling": "windows"},
                },
            ),
            Variant("state_region_referrals", train={"model": POINTED_AT}),
        ],
    ),
    "failure_recovery": (
        ["eval"],
        [
            Variant("state_no_failures", run=BASELINE_RUN),
            Variant("state_failure_recovery", "failures"),
            Variant("state_mistake_recovery", "mistakes"),
            Variant("state_blocked_pick_mistake_recovery", "blocked_pick_mistakes"),
            Variant(
                "state_failure_reasons",
                "blocked_pick_mistakes",
                {"model": ModelConfig(failure_reasons=True)},
            ),
        ],
    ),
    "question_resampling": (
        ["eval"],
        [
            Variant("state_episode_questions", run=BASELINE_RUN),
            Variant("state_resampled_questions", train={"resample_questions": True}),
            Variant("state_question_rationales", train={"question_rationales": True}),
            Variant(
                "state_failure_reasons_question_rationales",
                "blocked_pick_mistakes",
                {"model": ModelConfig(failure_reasons=True), "question_rationales": True},
            ),
            Variant(
                "state_support_relations_failure_reasons_question_rationales",
                "blocked_pick_mistakes",
                {
                    "encoder_config": {"support_relations": True},
                    "model": ModelConfig(failure_reasons=True),
                    "question_rationales": True,
                },
            ),
            Variant(
                "state_failure_reasons_resampled_question_rationales",
                "blocked_pick_mistakes",
                {
                    "model": ModelConfig(failure_reasons=True),
                    "question_rationales": True,
                    "resample_questions": True,
                },
            ),
            Variant(
                "state_failure_reasons_question_rationales_scene_descriptions",
                "blocked_pick_mistakes",
                {
                    "model": ModelConfig(failure_reasons=True),
                    "question_rationales": True,
                    "scene_descriptions": 0.25,
                },
            ),
            Variant(
                "state_failure_reasons_question_rationales_feasibility_questions",
                "blocked_pick_mistakes",
                {
                    "model": ModelConfig(failure_reasons=True),
                    "question_rationales": True,
                    "extra_questions": {"q4": 0.25},
                },
            ),
            Variant(
                "state_support_relations_failure_reasons_question_rationales_feasibility_questions",
                "blocked_pick_mistakes",
                {
                    "encoder_config": {"support_relations": True},
                    "model": ModelConfig(failure_reasons=True),
                    "question_rationales": True,
                    "extra_questions": {"q4": 0.25},
                },
            ),
            Variant(
                "state_support_relations_failure_reasons_question_rationales_colour_feasibility_questions",
                "blocked_pick_mistakes",
                SUPPORT_RELATION_COLOUR_RECIPE,
            ),
            *(
                Variant(
                    f"state_support_relations_failure_reasons_question_rationales_colour_feasibility_questions_{steps}_steps",
                    "blocked_pick_mistakes",
                    {**SUPPORT_RELATION_COLOUR_RECIPE, "steps": steps},
                )
                for steps in (5000, 8000)
            ),
        ],
    ),
    "representations": (
        ["eval"],
        [
            Variant("state_full", run=BASELINE_RUN),
            Variant("state_1pct", "1pct"),
            Variant("state_context_full", train={"encoder_config": {"context_layers": 2}}),
            *[
                Variant(f"vit_{corpus}", corpus, {"encoder": "vit", "model": COLOUR_NAMES})
                for corpus in ("full", "1pct")
            ],
            *[
                Variant(f"object_centric_{corpus}", corpus, {"encoder": "object_centric"})
                for corpus in ("full", "1pct")
            ],
            Variant(
                "object_centric_frozen_full",
                train={"encoder": "object_centric", "model": ModelConfig(freeze_encoder=True)},
            ),
            *[
                Variant(
                    f"osrt_{budget}",
                    f"{budget}_zoom",
                    {"encoder": "osrt", "model": COLOUR_NAMES},
                    encoder_run="encoder_osrt_rgbd_slot_mixer",
                )
                for budget in ("full", "1pct")
            ],
        ],
    ),
}
"""Study -> (evaluation splits, variants)."""


def corpus_env(corpus: Corpus) -> TabletopEnvConfig:
    """The tabletop a corpus is generated in, and its planners evaluated in."""
    env = TabletopEnvConfig(failure_rate=corpus.failure_rate)
    return env if corpus.views is None else replace(env, views=list(corpus.views))


def ensure_data(path: str, corpus: Corpus, quick: bool) -> None:
    """Generate ``corpus`` at ``path`` unless it is there; one there generated with another
    failure rate or other views is an error, not a silent substitute."""
    manifest = Path(path) / MANIFEST
    env = corpus_env(corpus)
    if manifest.exists():
        generator = json.loads(manifest.read_text())["generator"]
        default = TabletopEnvConfig()
        made_and_needed: list[tuple[str, Any, Any]] = [  # older manifests: the defaults
            (
                "env.failure_rate",
                generator["env"].get("failure_rate", default.failure_rate),
                env.failure_rate,
            ),
            ("env.views", generator["env"].get("views", default.views), env.views),
            # named in the manifest only when on
            ("mistake_rate", generator.get("mistake_rate", 0.0), corpus.mistake_rate),
            ("mistake_picks", generator.get("mistake_picks", "any"), corpus.mistake_picks),
        ]
        for name, made, needed in made_and_needed:
            if made != needed:
                raise SystemExit(
                    f"{path} was generated with {name}={made}; this corpus needs "
                    f"{needed}: move it away or regenerate it"
                )
        return
    config = GenerateConfig(
        env=env,
        episodes=corpus.episodes,
        mistake_rate=corpus.mistake_rate,
        mistake_picks=corpus.mistake_picks,
        output_dir=path,
    )
    if quick:
        config = replace(config, episodes=6, eval_episodes=3, shard_size=3, workers=1)
    generate(config)


def shared_lm(config: TrainConfig, full_data: str, runs: Path) -> str:
    """The variant's starting LM: pretrained once on the full corpus's text in this encoder's
    prompt format and the model's entity names, shared by every corpus (built on first use).
    ``model.failure_reasons`` does not get its own: the full corpus's oracle rarely fails a
    step, so its text is nearly the same with reasons or without."""
    names = "" if config.model.entity_names == "label" else f"_{config.model.entity_names}_names"
    directory = runs / f"lm_{Path(full_data).name}_{config.encoder}{names}"
    if not (directory / "config.json").exists():
        full = replace(config, data=full_data)
        bank = FrameBank(full_data, "train", ENCODERS[config.encoder].inputs)
        n_tokens = build_encoder(full, None).n_tokens
        pretrain_lm(full, bank, PLACEMENTS[config.encoder], n_tokens, directory)
    return str(directory)


def pretrained_instruction_encoder(sensor: str, data: str, runs: Path) -> str:
    """``runs/encoder_<sensor>/final``, pretrained here at the encoder's defaults (audio: CTC
    on spoken instructions; region: the referred object's state, on ``data``'s frames) unless
    it is there."""
    final = runs / f"encoder_{sensor}" / FINAL
    if not final.exists():
        config = TrainEncoderConfig(
            encoder=sensor, data=data, output_dir=str(final.parent), progress=False
        )
        train_encoder(config)
    return str(final)


def recognizer(data: str, runs: Path, quick: bool) -> str:
    """The speech recognizer of ``transcribed`` variants: the audio encoder pretrained with CTC
    (``pretrained_instruction_encoder``); ``quick``: an untrained one, saved under ``runs``."""
    if not quick:
        return pretrained_instruction_encoder("audio", data, runs)
    untrained = runs / "quick_recognizer"
    make_encoder("audio").save(untrained)
    return str(untrained)


def run_of(name: str) -> str:
    """The run directory of the variant called ``name``, in whichever study holds it."""
    for _, variants in STUDIES.values():
        for variant in variants:
            if variant.name == name:
                return variant.run_dir
    raise KeyError(f"no study has a variant {name!r}")


def train_config(variant: Variant, data: dict[str, str], runs: Path, quick: bool) -> TrainConfig:
    """``data``: corpus name -> its path."""
    steps = CORPORA[variant.corpus].steps
    fields: dict[str, Any] = {
        "data": data[variant.corpus],
        **({"steps": steps} if steps is not None else {}),
        **variant.train,
        "output_dir": variant.run_dir,
        "progress": False,
    }
    encoder = fields.get("encoder", "state")
    pretrained = runs / (variant.encoder_run or f"encoder_{encoder}") / FINAL
    if encoder != "state" and not quick:
        if not pretrained.exists():  # from scratch, the row would not compare with the others
            name = pretrained.parent.name.removeprefix("encoder_")
            raise SystemExit(
                f"{variant.name} starts its {encoder} encoder from {pretrained}, which is "
                f"missing: python -m experiments.pretrain_encoders --encoders {name} "
                f"--data {data['full']}"
            )
        fields["encoder_checkpoint"] = str(pretrained)
    model = fields.get("model", ModelConfig())
    sensor = model.instruction_sensor
    if sensor is not None and not quick:
        fields["instruction_encoder_checkpoint"] = pretrained_instruction_encoder(
            sensor, data["full"], runs
        )
    if variant.transcribed:
        fields["recognizer"] = recognizer(data["full"], runs, quick)
    if variant.fine_tunes is not None:
        parent = runs / f"quick_{variant.fine_tunes}" if quick else Path(run_of(variant.fine_tunes))
        if not (parent / FINAL).exists():
            raise SystemExit(
                f"{variant.name} fine-tunes {variant.fine_tunes}, not trained yet ({parent / FINAL}"
                f" is missing): run its study with --variants {variant.fine_tunes} first"
            )
        fields["init_checkpoint"] = str(parent / FINAL)
    config = TrainConfig(**fields)
    if quick:
        tiny = LMConfig(hidden=32, layers=1, heads=2, intermediate=64, pretrain_steps=2)
        return replace(config, steps=4, eval_every=2, eval_examples=2, checkpoint_every=2, lm=tiny)
    return replace(config, lm=replace(config.lm, path=shared_lm(config, data["full"], runs)))


def merged_rows(
    study: str, rows: list[dict[str, Any]], earlier: Path, splits: list[str], episodes: int
) -> list[dict[str, Any]]:
    """The rows just measured, with the earlier results' rows of the study's other variants
    when they were measured on the same splits and episodes (rerunning one variant keeps the
    rest of the table), in the study's variant order."""
    previous: list[dict[str, Any]] = []
    if earlier.exists():
        table = json.loads(earlier.read_text())
        if table["splits"] == splits and table["episodes"] == episodes:
            previous = table["rows"]
    return merge_rows(rows, previous, "variant", [v.name for v in STUDIES[study][1]])


def run_variant(
    variant: Variant,
    splits: list[str],
    episodes: int,
    data: dict[str, str],
    runs: Path,
    quick: bool,
) -> dict[str, Any]:
    """Train (unless finished) and evaluate one variant."""
    row: dict[str, Any] = {"variant": variant.name, "corpus": variant.corpus}
    row["commit"] = machine()["commit"]
    row["run"] = variant.run_dir
    row["entity_names"] = variant.train.get("model", ModelConfig()).entity_names
    final = Path(variant.run_dir) / FINAL
    if final.exists():
        trained = json.loads((final / MODEL_CONFIG).read_text()).get("entity_names", "label")
        if trained != row["entity_names"]:
            raise SystemExit(
                f"{final} names cubes by {trained}, {variant.name} by "
                f"{row['entity_names']}: move the run away to train it anew"
            )
    else:
        config = train_config(variant, data, runs, quick)
        row["encoder_checkpoint"] = config.encoder_checkpoint
        resumed_from = latest_checkpoint(Path(variant.run_dir) / CHECKPOINT)
        resumed = config.resume and resumed_from is not None
        before = trained_seconds(resumed_from) if resumed_from is not None and resumed else 0.0
        started = time.perf_counter()
        row["train_metrics"] = train(config)
        # A run cut off and resumed: this run's wall time plus the optimization seconds of the
        # runs before the cut (their set-up, data loading and LM pretraining not counted).
        row["train_s"] = round(before + time.perf_counter() - started)
    logged = last_metrics(Path(variant.run_dir))
    if "train_metrics" not in row and logged is not None:
        row["train_metrics"] = logged
        if "elapsed_s" in logged:  # trained by an earlier run of the study
            row["train_s"] = round(row["train_metrics"]["elapsed_s"])
            row["trained_earlier"] = True
    heard = recognizer(data["full"], runs, quick) if variant.transcribed else None
    started = time.perf_counter()
    info = evaluate(
        EvaluateConfig(
            env=replace(corpus_env(CORPORA[variant.corpus]), failure_rate=0.0),
            checkpoint=str(final),
            splits=splits,
            episodes=episodes,
            workers=2,
            output_dir=str(Path(variant.run_dir) / f"evaluation_{variant.name}"),
            recognizer=heard,
            **variant.evaluate,
        )
    )
    row["evaluation"] = info["summary"]
    row["evaluate_s"] = round(time.perf_counter() - started)
    return row


def _training_time(row: dict[str, Any]) -> str:
    if "train_s" not in row:
        return "(trained earlier) "
    if row.get("trained_earlier"):
        return f"(trained earlier: {row['train_s']} s by its log) "
    return f"{row['train_s']} s training + "


SELF_ANSWERED = "†"
"""Marks q1 of a planner that names cubes by colour: the question names its answer."""


def _answers_itself(row: dict[str, Any], family: str) -> str:
    return f" {SELF_ANSWERED}" if family == "q1" and row.get("entity_names") == "colour" else ""


def to_markdown(study: str, results: dict[str, Any]) -> str:
    lines = [f"## Study `{study}` (`python -m experiments.palme_studies --study {study}`)", ""]
    for split in results["splits"]:
        families = sorted(
            {f for row in results["rows"] for f in row["evaluation"][split]["families"]}
        )
        lines += [
            f"### split `{split}`",
            "",
            "| variant | all | " + " | ".join(families) + " |",
            "|---|---|" + "---|" * len(families),
        ]
        for row in results["rows"]:
            table = row["evaluation"][split]
            cells = [_cell(table["overall"], bold=True)]
            cells += [
                _cell(table["families"][f]) + _answers_itself(row, f)
                if f in table["families"]
                else ""
                for f in families
            ]
            lines.append(f"| {row['variant']} | " + " | ".join(cells) + " |")
        lines.append("")
    if any(row.get("entity_names") == "colour" for row in results["rows"]):
        lines += [
            f"{SELF_ANSWERED} q1 of a planner that names cubes by colour "
            '(`model.entity_names=colour`): the question names its answer ("What colour is red?").',
            "",
        ]
    lines.append(
        f"Success rate (question families: answer accuracy) [95% Wilson interval], "
        f"{results['episodes']} episodes per family and split on the split's fixed seeds, "
        f"closed loop in physics. Wall time: "
        + ", ".join(
            f"{row['variant']} " + _training_time(row) + f"{row['evaluate_s']} s evaluation"
            for row in results["rows"]
        )
        + f". {results['machine']['cpus']} CPUs, commit "
        + ", ".join(
            sorted({row.get("commit", results["machine"]["commit"]) for row in results["rows"]})
        )
        + "."
    )
    return "\n".join(lines)


def plot(study: str, results: dict[str, Any], path: Path) -> None:
    """Overall success per variant (bars) and split (groups), 95% intervals as error bars."""
    splits, rows = results["splits"], results["rows"]
    width = 0.8 / len(rows)
    figure = Figure(figsize=(max(6.0, 1.6 * len(splits) + 2), 3.6))
    axes = figure.subplots()
    for k, row in enumerate(rows):
        xs = [i + (k - (len(rows) - 1) / 2) * width for i in range(len(splits))]
        overall = [row["evaluation"][split]["overall"] for split in splits]
        rates = [o["rate"] for o in overall]
        errors = [[r - o["ci95"][0] for r, o in zip(rates, overall, strict=True)]]
        errors.append([o["ci95"][1] - r for r, o in zip(rates, overall, strict=True)])
        axes.bar(xs, rates, width, yerr=errors, capsize=3, label=row["variant"])
    axes.set_xticks(range(len(splits)), splits)
    axes.set_ylim(0, 1.05)
    axes.set_ylabel("success, all families (95% CI)")
    axes.set_title(f"study {study}", fontsize=10)
    axes.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def _cell(row: dict[str, Any], bold: bool = False) -> str:
    low, high = row["ci95"]
    rate = f"**{row['rate']:.2f}**" if bold else f"{row['rate']:.2f}"
    return f"{rate} [{low:.2f}, {high:.2f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", required=True, choices=sorted(STUDIES))
    parser.add_argument("--variants", nargs="+", help="only these variants of the study")
    parser.add_argument("--episodes", type=int, default=20, help="per family and split")
    parser.add_argument("--runs", type=Path, default=Path("runs"))
    parser.add_argument("--quick", action="store_true", help="tiny data, model and evaluation")
    parser.add_argument("--output-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args()
    splits, variants = STUDIES[args.study]
    if args.variants:
        unknown = sorted(set(args.variants) - {v.name for v in variants})
        if unknown:
            allowed = [v.name for v in variants]
            raise SystemExit(f"--variants {unknown}: study {args.study} has {allowed}")
        variants = [v for v in variants if v.name in args.variants]
    data = {name: corpus.path for name, corpus in CORPORA.items()}
    if args.quick:  # everything under --runs, nothing in data/ or the real runs
        variants = [replace(v, run=str(args.runs / f"quick_{v.name}")) for v in variants]
        data = {name: str(args.runs / f"quick_data_{name}") for name in CORPORA}
        args.episodes, splits = 1, splits[:1]
    for name in sorted({v.corpus for v in variants} | {"full"}):
        ensure_data(data[name], CORPORA[name], args.quick)
    rows = [run_variant(v, splits, args.episodes, data, args.runs, args.quick) for v in variants]
    name = f"study_{args.study}" + ("_quick" if args.quick else "")
    results = {
        "study": args.study,
        "splits": splits,
        "episodes": args.episodes,
        "machine": machine(),
        "rows": merged_rows(
            args.study, rows, args.output_dir / f"{name}.json", splits, args.episodes
        ),
    }
    write_results(name, results, to_markdown(args.study, results), args.output_dir)
    plot(args.study, results, args.output_dir / f"{name}.png")


if __name__ == "__main__":
    main()
