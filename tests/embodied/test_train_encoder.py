"""``embodied.train_encoder``: a short pretraining run lowers the held-out loss, writes metrics,
checkpoints and the final encoder, and resumes exactly; bad configs name the field."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from embodied import train_encoder, training
from embodied.config import GenerateConfig, TabletopEnvConfig, TrainEncoderConfig
from embodied.data.frames import FrameBank, add_regions
from embodied.generate import generate
from embodied.train_encoder import CHECKPOINT, FINAL, train
from embodied.training import METRICS, TRAINER_STATE, trained_seconds
from encoders import load_encoder
from encoders.region import REGION_MASK, REGION_TARGET, REGION_VIEW
from envs import keys

ROOT = Path(__file__).resolve().parents[2]
TINY = {"hidden": 32, "layers": 1, "heads": 2, "dim": 16}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("data") / "tabletop"
    generate(
        GenerateConfig(
            env=TabletopEnvConfig(image_size=32, views=["front", "left"]),
            tasks=["q1", "q2"],
            episodes=24,
            eval_episodes=8,
            shard_size=12,
            workers=1,
            output_dir=str(root),
            progress=False,
        )
    )
    return str(root)


def config(dataset: str, output: Path, **overrides) -> TrainEncoderConfig:
    fields = {
        "encoder": "vit",
        "model": dict(TINY),
        "data": dataset,
        "steps": 30,
        "batch_size": 8,
        "lr": 3e-3,
        "warmup_steps": 5,
        "eval_every": 10,
        "eval_batches": 2,
        "checkpoint_every": 10,
        "output_dir": str(output),
        "progress": False,
    }
    return TrainEncoderConfig(**{**fields, **overrides})


@pytest.mark.parametrize("encoder", ["vit", "object_centric", "region"])
def test_pretraining_lowers_the_held_out_loss(dataset, tmp_path, encoder):
    run = config(dataset, tmp_path, encoder=encoder)
    train(run)
    metrics = [json.loads(line) for line in (tmp_path / METRICS).read_text().splitlines()]
    assert [m["step"] for m in metrics] == [10, 20, 30]
    assert metrics[-1]["eval_loss"] < metrics[0]["eval_loss"], metrics
    final = load_encoder(tmp_path / FINAL)
    assert final.name == encoder and final.config.image_size == 32 and final.config.views == 2
    assert (tmp_path / CHECKPOINT / TRAINER_STATE).exists()


def interrupt_at_step_13(monkeypatch) -> Callable[[], None]:
    """Make training runs die at step 13, between their checkpoints, until the returned
    function is called."""
    real_make_batch = train_encoder.make_batch

    def interrupted_at_13(bank, run, step, seed):
        if step == 13:
            raise KeyboardInterrupt("killed between checkpoints")
        return real_make_batch(bank, run, step, seed)

    monkeypatch.setattr(train_encoder, "make_batch", interrupted_at_13)
    return lambda: monkeypatch.setattr(train_encoder, "make_batch", real_make_batch)


def test_an_interrupted_run_resumes_to_the_same_weights(dataset, tmp_path, monkeypatch):
    train(config(dataset, tmp_path / "straight", steps=20))
    heal = interrupt_at_step_13(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        train(config(dataset, tmp_path / "resumed", steps=20))
    assert not (tmp_path / "resumed" / FINAL).exists()
    heal()
    train(config(dataset, tmp_path / "resumed", steps=20))  # resumes at the step-10 checkpoint
    a = load_encoder(tmp_path / "straight" / FINAL).state_dict()
    b = load_encoder(tmp_path / "resumed" / FINAL).state_dict()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    logged = [json.loads(line)["step"] for line in (tmp_path / "resumed" / METRICS).open()]
    assert logged == [10, 20], "the resumed run logs on from where it stopped"


def test_a_resumed_run_counts_the_seconds_before_it(dataset, tmp_path, monkeypatch):
    ticks = iter(range(0, 10_000, 10))  # a clock that moves 10 s each time it is read
    monkeypatch.setattr(training, "time", SimpleNamespace(perf_counter=lambda: next(ticks)))
    heal = interrupt_at_step_13(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        train(config(dataset, tmp_path, steps=20))
    before = trained_seconds(tmp_path / CHECKPOINT)
    heal()
    train(config(dataset, tmp_path, steps=20))
    elapsed = [json.loads(line)["elapsed_s"] for line in (tmp_path / METRICS).open()]
    # First run: started at 0, logged at 10, checkpointed at 20. Resumed: 20 s before it,
    # started at 30, logged at 40 (20 + 10), checkpointed at 50 (20 + 20).
    assert before == 20
    assert elapsed == [10, 30], "the resumed run's clock goes on from its checkpoint's"
    assert trained_seconds(tmp_path / CHECKPOINT) == 40
    state = torch.load(tmp_path / CHECKPOINT / TRAINER_STATE, weights_only=True)
    del state["elapsed_s"]  # a checkpoint written before the seconds were kept
    torch.save(state, tmp_path / CHECKPOINT / TRAINER_STATE)
    assert trained_seconds(tmp_path / CHECKPOINT) == 0.0


def test_a_checkpoint_of_another_config_is_refused(dataset, tmp_path):
    train(config(dataset, tmp_path, steps=10))
    with pytest.raises(ValueError, match="choose another output_dir"):
        train(config(dataset, tmp_path, steps=20, model={**TINY, "dim": 8}))


def test_region_batches_draw_regions_on_visible_objects(dataset):
    bank = FrameBank(dataset, "train", ["rgb", "segmentation", "objects", "object_mask"])
    batch = add_regions(bank.batch(16, seed=0, step=0), seed=0, step=0)
    for i in range(16):
        view, target = int(batch[REGION_VIEW][i]), int(batch[REGION_TARGET][i])
        region = batch[REGION_MASK][i]
        on_target = batch[keys.SEGMENTATION][i, view] == target + 1
        assert region.any() and (region & on_target).any(), "the region touches its object"
        assert batch[keys.OBJECT_MASK][i, target] == 1
    again = add_regions(bank.batch(16, seed=0, step=0), seed=0, step=0)
    assert torch.equal(again[REGION_MASK], batch[REGION_MASK]), "a step's batch is fixed"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"encoder": "state"}, "trains with the planner"),
        ({"encoder": "sonar"}, r"allowed \["),
        ({"steps": 0}, "steps=0"),
        ({"lr": 0.0}, "lr=0.0"),
    ],
)
def test_bad_training_config_names_the_field(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        config("unused", tmp_path, **overrides)


def test_command_line_trains_and_reports(dataset, tmp_path):
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "embodied.train_encoder",
            "encoder=object_centric",
            f"data={dataset}",
            "steps=4",
            "batch_size=4",
            "eval_every=2",
            "checkpoint_every=2",
            "+model.hidden=32",
            "+model.layers=1",
            "+model.heads=2",
            f"output_dir={tmp_path}",
            f"hydra.run.dir={tmp_path / 'hydra'}",
            "progress=false",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert "object_centric:" in run.stdout and "done:" in run.stdout
    assert (tmp_path / FINAL / "model.safetensors").exists()
