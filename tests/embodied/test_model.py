"""The PaLM-E model: injection, loss masking, save/load, frozen LM, decoding, a local Hugging Face
LM, and a tiny train -> plan -> execute run."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

import embodied.train
import envs  # noqa: F401  (registers the environments)
from embodied.config import (
    GenerateConfig,
    LMConfig,
    ModelConfig,
    TabletopEnvConfig,
    TrainConfig,
)
from embodied.data.frames import FrameBank
from embodied.data.regions import refer_by_region
from embodied.data.speech import SpokenInstructions
from embodied.decoding import MAX_REPLY_TOKENS, TokenTrie, greedy_decode
from embodied.entity_names import rename
from embodied.episode import run_episode
from embodied.generate import generate
from embodied.instructions import HELD_OUT_SEED, TRAIN_SEED, instruction_inputs
from embodied.lm import AUDIO, IMAGE, OBJECT_PLACEHOLDERS, load_lm, small_llama, train_tokenizer
from embodied.model import PalmE
from embodied.palme_planner import PalmEPlanner, valid_steps
from embodied.sentence import IGNORE, OBJECTS, encode, inject, prompt_text
from embodied.train import (
    CHECKPOINT,
    FINAL,
    SCENE_FAMILY,
    ask_question,
    askable_frames,
    describe_scene,
    explain_answer,
    frame_records,
    move_object_rows,
    relabel_entities,
    resample_question,
    spread_rows,
    train,
)
from embodied.training import METRICS
from encoders import make_encoder
from encoders.audio import AudioEncoder
from encoders.region import region_mask
from encoders.state import support_relations
from envs import keys
from envs.base import OBJECT_CAPACITY
from envs.scene import PALETTE, ObjectState, SymbolicState
from envs.tasks.tamp import (
    FEASIBILITY_QUESTION,
    SUPPORT_QUESTION,
    describe_support,
    is_feasible,
    question_checks,
)

ROOT = Path(__file__).resolve().parents[2]
TINY_LM = LMConfig(hidden=32, layers=1, heads=2, intermediate=64, vocab_size=320, pretrain_steps=5)
CORPUS = [
    "obj_1 is <obj_1>. obj_2 is <obj_2>. Q: How to grasp obj_2? Next: pick(obj_2)",
    "Q: What colour is obj_1? A: red",
    "Done: pick(obj_1); place(obj_1, table) [failed]. Next: done()",
]


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(CORPUS * 20, 320)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("data") / "tabletop"
    generate(
        GenerateConfig(
            env=TabletopEnvConfig(image_size=32, views=["front"]),
            tasks=["p1", "q1"],
            episodes=16,
            eval_episodes=6,
            shard_size=8,
            workers=1,
            output_dir=str(root),
            progress=False,
        )
    )
    return str(root)


@pytest.fixture(scope="module")
def feasibility_dataset(tmp_path_factory) -> str:
    """q4 questions (both answers) and p2 plans, 24 + 6 episodes."""
    root = tmp_path_factory.mktemp("data") / "tabletop_q4"
    generate(
        GenerateConfig(
            env=TabletopEnvConfig(image_size=32, views=["front"]),
            tasks=["p2", "q4"],
            episodes=24,
            eval_episodes=6,
            shard_size=12,
            workers=1,
            output_dir=str(root),
            progress=False,
        )
    )
    return str(root)


def run_config(dataset: str, output: Path, **overrides) -> TrainConfig:
    fields = {
        "lm": TINY_LM,
        "encoder_config": {"hidden": 16, "dim": 16},
        "data": dataset,
        "steps": 12,
        "batch_size": 8,
        "lr": 3e-3,
        "warmup_steps": 2,
        "eval_every": 6,
        "eval_examples": 6,
        "checkpoint_every": 6,
        "output_dir": str(output),
        "progress": False,
    }
    return TrainConfig(**{**fields, **overrides})


def tiny_model(tokenizer, freeze_lm: bool = False) -> PalmE:
    torch.manual_seed(0)
    encoder = make_encoder("state", hidden=16, dim=16)
    return PalmE(
        small_llama(TINY_LM, tokenizer), tokenizer, encoder, ModelConfig(freeze_lm=freeze_lm)
    )


def state_batch(count: int = 2) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    objects = torch.randn(count, 8, 11, generator=generator)
    mask = torch.zeros(count, 8, dtype=torch.int8)
    mask[:, :3] = 1
    return {"objects": objects, "object_mask": mask}


def test_injection_puts_each_sensor_token_at_its_placeholder(tokenizer):
    prompts = [
        prompt_text("How to grasp obj_2?", "plan", ["obj_1", "obj_2", "obj_3"]),
        prompt_text("What colour is obj_3?", "question", ["obj_1", "obj_2"]),
    ]
    assert prompts[0].startswith("obj_1 is <obj_1>. obj_2 is <obj_2>. obj_3 is <obj_3>. Q:")
    ids = encode(tokenizer, prompts).input_ids  # (2, T)
    text = torch.zeros(*ids.shape, 4)
    sensor = torch.arange(2 * 8 * 4, dtype=torch.float32).reshape(2, 8, 4) + 1
    out = inject(text, ids, tokenizer, OBJECTS, sensor)
    for b in range(2):
        for t in range(ids.shape[1]):
            token = tokenizer.convert_ids_to_tokens(int(ids[b, t]))
            if token in OBJECT_PLACEHOLDERS:
                j = OBJECT_PLACEHOLDERS.index(token)
                assert torch.equal(out[b, t], sensor[b, j]), (b, t, token)
            else:
                assert torch.equal(out[b, t], text[b, t])
    assert int((out.abs().sum(-1) > 0).sum()) == 3 + 2  # one position per entity


def test_a_failed_step_shows_its_reason_when_one_is_given():
    history, success = ["pick(obj_2)", "pick(obj_1)"], [False, True]
    plain = prompt_text("How to grasp obj_2?", "plan", ["obj_1", "obj_2"], history, success)
    assert plain.endswith("Done: pick(obj_2) [failed]; pick(obj_1). Next:")
    reasons = ["obj_2 is blocked by obj_1", ""]
    told = prompt_text(
        "How to grasp obj_2?", "plan", ["obj_1", "obj_2"], history, success, history_reasons=reasons
    )
    reasoned = "Done: pick(obj_2) [failed: obj_2 is blocked by obj_1]; pick(obj_1). Next:"
    assert told.endswith(reasoned)
    with pytest.raises(ValueError, match="2 history steps, 2 outcomes and 3 reasons"):
        prompt_text("Q", "plan", ["obj_1"], history, success, history_reasons=[*reasons, "x"])


def test_image_placeholders_take_the_tokens_in_order(tokenizer):
    prompt = prompt_text("Is obj_1 left?", "question", [], placement=IMAGE, n_tokens=5)
    assert prompt.startswith(f"Scene: {IMAGE * 5}. Q:")
    ids = encode(tokenizer, [prompt, prompt]).input_ids
    sensor = torch.randn(2, 5, 3)
    out = inject(torch.zeros(*ids.shape, 3), ids, tokenizer, IMAGE, sensor)
    positions = (ids[0] == tokenizer.convert_tokens_to_ids(IMAGE)).nonzero().flatten()
    assert len(positions) == 5
    assert torch.equal(out[:, positions], sensor)
    with pytest.raises(ValueError, match="more <img> placeholders"):
        inject(torch.zeros(*ids.shape, 3), ids, tokenizer, IMAGE, sensor[:, :4])


def test_the_loss_covers_the_target_only(tokenizer):
    model = tiny_model(tokenizer)
    prompts = [
        prompt_text("How to grasp obj_2?", "plan", ["obj_1", "obj_2", "obj_3"]),
        prompt_text("What colour is obj_1?", "question", ["obj_1", "obj_2", "obj_3"]),
    ]
    encoded = encode(tokenizer, prompts, ["pick(obj_2)", "red"])
    for b, target in enumerate(["pick(obj_2)", "red"]):
        labelled = encoded.labels[b][encoded.labels[b] != IGNORE].tolist()
        assert labelled == [*tokenizer.encode(" " + target), tokenizer.eos_token_id]
        assert (encoded.labels[b][encoded.attention_mask[b] == 0] == IGNORE).all()
    batch = state_batch()
    loss = model(encoded, batch)
    logits = model.lm(inputs_embeds=model.embed(encoded.input_ids, batch)).logits
    per_example = [
        torch.nn.functional.cross_entropy(
            logits[b, :-1], encoded.labels[b, 1:], ignore_index=IGNORE
        )  # this example's mean over its own target tokens
        for b in range(2)
    ]
    assert torch.allclose(loss, torch.stack(per_example).mean(), atol=1e-6)
    # Changing the prompt's text tokens never changes which positions carry loss.
    longer = encode(tokenizer, [prompts[0] + " Done: pick(obj_1)."], ["pick(obj_2)"])
    assert (longer.labels != IGNORE).sum() == (encoded.labels[0] != IGNORE).sum()


def test_save_and_load_give_the_same_model(tokenizer, tmp_path):
    model = tiny_model(tokenizer).eval()
    model.save(tmp_path)
    assert {"config.json", "model.safetensors", "tokenizer.json", "palme.json"} <= {
        p.name for p in tmp_path.iterdir()
    }
    loaded = PalmE.load(tmp_path).eval()
    encoded = encode(tokenizer, [prompt_text("How to grasp obj_2?", "plan", ["obj_1", "obj_2"])])
    batch = state_batch(1)
    with torch.no_grad():
        a = model.lm(inputs_embeds=model.embed(encoded.input_ids, batch)).logits
        b = loaded.lm(inputs_embeds=loaded.embed(encoded.input_ids, batch)).logits
    assert torch.equal(a, b)
    for (name, p), (_, q) in zip(
        model.state_dict().items(), loaded.state_dict().items(), strict=True
    ):
        assert torch.equal(p, q), name


def test_a_frozen_lm_stays_bit_identical_while_the_rest_learns(tokenizer):
    model = tiny_model(tokenizer, freeze_lm=True)
    lm_before = {k: v.clone() for k, v in model.lm.state_dict().items()}
    projector_before = {k: v.clone() for k, v in model.projector.state_dict().items()}
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-2, weight_decay=0.1)
    prompts = [prompt_text("How to grasp obj_2?", "plan", ["obj_1", "obj_2", "obj_3"])] * 2
    encoded = encode(tokenizer, prompts, ["pick(obj_2)", "pick(obj_2)"])
    losses = []
    for _ in range(5):
        loss = model(encoded, state_batch())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    for name, value in model.lm.state_dict().items():
        assert torch.equal(value, lm_before[name]), name
    assert any(
        not torch.equal(v, projector_before[k]) for k, v in model.projector.state_dict().items()
    )
    assert losses[-1] < losses[0]


def test_greedy_decoding_with_the_cache_matches_generate(tokenizer):
    model = tiny_model(tokenizer).eval()
    encoded = encode(tokenizer, [prompt_text("How to grasp obj_2?", "plan", ["obj_1", "obj_2"])])
    embeddings = model.embed(encoded.input_ids, state_batch(1))
    ours = greedy_decode(model.lm, embeddings, eos_token_id=-1, max_new_tokens=8)
    with torch.no_grad():
        reference = model.lm.generate(
            inputs_embeds=embeddings,
            attention_mask=torch.ones(embeddings.shape[:2], dtype=torch.long),
            max_new_tokens=8,
            min_new_tokens=8,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
        )
    assert ours == reference[0, -8:].tolist()


def test_constrained_decoding_only_writes_allowed_texts(tokenizer):
    model = tiny_model(tokenizer).eval()  # untrained: free decoding writes noise
    allowed = ["pick(obj_1)", "pick(obj_2)", "place(obj_1, obj_2)", "done()"]
    trie = TokenTrie.of_texts(tokenizer, allowed)
    for seed in range(5):
        torch.manual_seed(seed)
        embeddings = torch.randn(1, 7, 32)
        tokens = greedy_decode(model.lm, embeddings, tokenizer.eos_token_id, 24, trie)
        assert tokenizer.decode(tokens).strip() in allowed


def test_valid_steps_cover_the_scene(make_env):
    env = make_env()
    env.reset(seed=3)
    steps = valid_steps(env.unwrapped)
    entities = env.unwrapped.entities
    assert "done()" in steps and all(f"pick({e})" in steps for e in entities)
    assert f"place({entities[0]}, table)" in steps
    assert f"place({entities[0]}, {entities[0]})" not in steps


def foreign_tokenizer() -> PreTrainedTokenizerFast:
    """A tokenizer made elsewhere: its own end token, no pad, none of our placeholders."""
    bare = Tokenizer(models.BPE())
    bare.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bare.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bare.train_from_iterator(CORPUS * 20, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=bare, eos_token="<|endoftext|>")


def test_a_local_hugging_face_lm_loads_and_trains(tmp_path, dataset):
    tokenizer = foreign_tokenizer()
    assert "<obj_3>" not in tokenizer.get_vocab() and tokenizer.pad_token is None
    pretrained = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=24,
            intermediate_size=48,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=2,
        )
    )
    pretrained.save_pretrained(tmp_path / "pretrained")
    tokenizer.save_pretrained(tmp_path / "pretrained")
    lm, loaded_tokenizer = load_lm(tmp_path / "pretrained")
    assert "<obj_3>" in loaded_tokenizer.get_vocab() and loaded_tokenizer.pad_token is not None
    assert lm.get_input_embeddings().weight.shape[0] >= len(loaded_tokenizer)
    assert torch.equal(
        lm.get_input_embeddings().weight[: len(tokenizer)],
        pretrained.get_input_embeddings().weight,
    ), "the pretrained embeddings are kept; only the new tokens' rows are added"
    metrics = train(
        run_config(dataset, tmp_path / "run", lm=LMConfig(path=str(tmp_path / "pretrained")))
    )
    assert metrics["step"] == 12
    model = PalmE.load(tmp_path / "run" / FINAL)
    assert model.lm.config.hidden_size == 24
    assert not (tmp_path / "run" / "lm").exists(), "a given LM is not pretrained again"


def test_family_alpha_sets_each_familys_share_of_the_draws(dataset):
    bank = FrameBank(dataset, "train", (keys.OBJECTS, keys.OBJECT_MASK))
    frames = Counter(record["family"] for record in bank.records)
    assert frames["p1"] > 1.5 * frames["q1"], frames  # plans have several frames, questions one

    def q1_share(alpha: float) -> float:
        drawn = Counter(
            bank.records[int(i)]["family"]
            for step in range(300)
            for i in bank.draw(4, 0, step, family_alpha=alpha)
        )
        return drawn["q1"] / drawn.total()

    def expected(alpha: float) -> float:
        return frames["q1"] ** alpha / (frames["q1"] ** alpha + frames["p1"] ** alpha)

    for alpha in (0.0, 0.5, 1.0):  # equal shares, between, every frame equally likely
        assert q1_share(alpha) == pytest.approx(expected(alpha), abs=0.04), alpha
    assert q1_share(0.0) > q1_share(0.5) > q1_share(1.0)
    assert torch.equal(bank.draw(4, 0, 7, 0.5), bank.draw(4, 0, 7, 0.5)), "same (seed, step)"
    with pytest.raises(ValueError, match=r"family_alpha=1.5: must be in \[0, 1\]"):
        run_config(dataset, Path("unused"), family_alpha=1.5)


def test_training_lowers_the_held_out_loss_and_writes_hf_checkpoints(dataset, tmp_path):
    train(run_config(dataset, tmp_path, steps=40, eval_every=20, lr=1e-2))
    metrics = [json.loads(line) for line in (tmp_path / METRICS).read_text().splitlines()]
    assert [m["step"] for m in metrics] == [20, 40]
    assert metrics[-1]["eval_loss"] < metrics[0]["eval_loss"], metrics
    assert {"plan_accuracy", "question_accuracy", "tokens_per_s"} <= set(metrics[-1])
    for directory in (tmp_path / FINAL, tmp_path / CHECKPOINT, tmp_path / "lm"):
        assert (directory / "config.json").exists() and (directory / "model.safetensors").exists()
    saved = json.loads((tmp_path / FINAL / "train_config.json").read_text())
    assert saved["steps"] == 40


def test_an_interrupted_run_resumes_to_the_same_weights(dataset, tmp_path, monkeypatch):
    train(run_config(dataset, tmp_path / "straight"))
    real_draw = FrameBank.draw

    def interrupted_at_9(self, size, seed, step, family_alpha=1.0):
        if seed == 0 and step == 9:
            raise KeyboardInterrupt("killed between checkpoints")
        return real_draw(self, size, seed, step, family_alpha)

    monkeypatch.setattr(FrameBank, "draw", interrupted_at_9)
    with pytest.raises(KeyboardInterrupt):
        train(run_config(dataset, tmp_path / "resumed"))
    assert not (tmp_path / "resumed" / FINAL).exists()
    monkeypatch.setattr(FrameBank, "draw", real_draw)
    coloured = run_config(dataset, tmp_path / "resumed", model=ModelConfig(entity_names="colour"))
    with pytest.raises(ValueError, match=r"model\.entity_names='label' there, 'colour' here"):
        train(coloured)
    train(run_config(dataset, tmp_path / "resumed"))  # resumes at the step-6 checkpoint
    a = PalmE.load(tmp_path / "straight" / FINAL).state_dict()
    b = PalmE.load(tmp_path / "resumed" / FINAL).state_dict()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def spoken_model(tokenizer) -> PalmE:
    torch.manual_seed(0)
    return PalmE(
        small_llama(TINY_LM, tokenizer),
        tokenizer,
        make_encoder("state", hidden=16, dim=16),
        ModelConfig(instruction_sensor="audio", keep_placeholder=False),
        make_encoder("audio", n_mels=16, width=16, layers=1, heads=2, tokens=3, dim=16),
    )


def test_training_speaks_each_instruction_in_the_configured_number_of_ways(tokenizer):
    encoder = spoken_model(tokenizer).instruction_encoder
    training = instruction_inputs(encoder, held_out=False, spoken_variants=5)
    held_out = instruction_inputs(encoder, held_out=True, spoken_variants=5)
    assert isinstance(training, SpokenInstructions) and isinstance(held_out, SpokenInstructions)
    assert (training.seed, training.variants) == (TRAIN_SEED, 5)
    assert (held_out.seed, held_out.variants) == (HELD_OUT_SEED, 1), "one way, other voices"
    draws = np.random.default_rng(0)
    _, audio = training.prepare(["How to grasp obj_1?"] * 40, [[]] * 40, {}, draws)
    assert len(training._cache) == 5, "40 examples heard in all 5 ways, no more"
    assert audio["audio_features"].shape[0] == 40


def test_a_spoken_instruction_fills_the_audio_placeholders_beside_the_scene(tokenizer):
    model = spoken_model(tokenizer).eval()  # no dropout: the same tokens twice
    prompt = model.prompt("How to grasp obj_2?", "plan", ["obj_1", "obj_2"], ["pick(obj_1)"])
    assert prompt == (
        f"obj_1 is <obj_1>. obj_2 is <obj_2>. Q: {AUDIO * 3} Done: pick(obj_1). Next:"
    )
    speech = SpokenInstructions(seed=0, n_mels=16)
    observation = {**state_batch(1), **speech.batch(["How to grasp obj_2?"])}
    ids = encode(tokenizer, [prompt]).input_ids
    with torch.no_grad():
        out = model.embed(ids, observation)[0]  # (T, D)
        scene = model.projector(model.encoder(observation))[0]  # (8, D)
        spoken = model.instruction_projector(model.instruction_encoder(observation))[0]  # (3, D)
    tokens = tokenizer.convert_ids_to_tokens(ids[0].tolist())
    audio_positions = [t for t, token in enumerate(tokens) if token == AUDIO]
    assert len(audio_positions) == 3
    assert torch.equal(out[audio_positions], spoken)
    for j, token in enumerate(OBJECT_PLACEHOLDERS[:2]):
        assert torch.equal(out[tokens.index(token)], scene[j])
    # The same text is spoken the same way by one seed, and another way by another seed.
    again = SpokenInstructions(seed=0, n_mels=16).features("How to grasp obj_2?")
    assert torch.equal(again, speech.features("How to grasp obj_2?"))
    other = SpokenInstructions(seed=1, n_mels=16).features("How to grasp obj_2?")
    assert other.shape != again.shape or not torch.equal(other, again)


def test_a_model_with_an_instruction_sensor_saves_and_loads_exactly(tokenizer, tmp_path):
    model = spoken_model(tokenizer).eval()
    model.save(tmp_path)
    loaded = PalmE.load(tmp_path).eval()
    assert loaded.instruction_encoder is not None
    for (name, p), (_, q) in zip(
        model.state_dict().items(), loaded.state_dict().items(), strict=True
    ):
        assert torch.equal(p, q), name
    with pytest.raises(ValueError, match="instruction_sensor='audio' needs that instruction"):
        PalmE(model.lm, tokenizer, model.encoder, ModelConfig(instruction_sensor="audio"))


def test_a_frozen_speech_backbone_stays_frozen_in_training_and_after_loading(tokenizer, tmp_path):
    config = ModelConfig(
        instruction_sensor="audio", keep_placeholder=False, freeze_instruction_backbone=True
    )
    spoken = make_encoder("audio", n_mels=16, width=16, layers=1, heads=2, tokens=3, dim=16)
    model = PalmE(
        small_llama(TINY_LM, tokenizer),
        tokenizer,
        make_encoder("state", hidden=16, dim=16),
        config,
        spoken,
    )
    model.save(tmp_path)
    for trained in (model, PalmE.load(tmp_path)):
        trained.train()
        encoder = trained.instruction_encoder
        assert encoder is not None and not encoder.transformer.training
        learning = {n for n, p in encoder.named_parameters() if p.requires_grad}
        assert learning == {
            n
            for n, _ in encoder.named_parameters()
            if n.startswith(("queries", "pool.", "project."))
        }, learning
        assert all(p.requires_grad for p in trained.instruction_projector.parameters())


def test_a_region_referral_points_at_the_first_named_object():
    segmentation = np.zeros((2, 32, 32), dtype=np.int32)  # (V, H, W)
    segmentation[1, 10:14, 20:26] = 2  # obj_2, seen by view 1 only
    segmentation[0, 3:6, 3:6] = 3
    rng = np.random.default_rng(0)
    entities = ["obj_1", "obj_2", "obj_3"]
    for kind in ("point", "box", "mask"):
        text, region = refer_by_region(
            "How to stack obj_2 on top of obj_3?", entities, segmentation, rng, kind
        )
        assert region is not None and region.kind == kind and region.view == 1
        mask = region_mask(region, 32)
        assert (segmentation[1][mask] == 2).any(), "the region lies on obj_2"
        assert text.startswith("How to stack [") and text.endswith("<region> on top of obj_3?")
        if kind != "point":  # a box or mask is written as obj_2's box: x 20-25, y 10-13
            assert "[62, 31, 78, 40] <region>" in text
    hidden, none = refer_by_region("How to grasp obj_1?", entities, segmentation, rng)
    assert (hidden, none) == ("How to grasp obj_1?", None), "no view shows obj_1"
    unnamed = refer_by_region("Is the red object left?", entities, segmentation, rng)
    assert unnamed == ("Is the red object left?", None)


@pytest.mark.parametrize("sensor", ["audio", "region"])
def test_tiny_train_plan_execute_with_an_instruction_sensor(dataset, tmp_path, sensor):
    settings = {
        "audio": {"n_mels": 16, "width": 16, "layers": 1, "heads": 2, "tokens": 3},
        "region": {"image_size": 32, "views": 1, "hidden": 16, "layers": 1, "heads": 2},
    }
    make_encoder(sensor, dim=16, **settings[sensor]).save(tmp_path / sensor)
    config = run_config(
        dataset,
        tmp_path / "run",
        steps=6,
        eval_every=6,
        eval_examples=2,
        model=ModelConfig(instruction_sensor=sensor),
        instruction_encoder_checkpoint=str(tmp_path / sensor),
        instruction_encoder_config={"pooling": "windows"} if sensor == "audio" else {},
    )
    metrics = train(config)
    assert np.isfinite(metrics["eval_loss"])
    planner = PalmEPlanner(tmp_path / "run" / FINAL, decoding="constrained")
    assert planner.model.instruction_encoder is not None
    assert planner.model.instruction_encoder.name == sensor
    if sensor == "audio":  # the override over the pretrained config is saved with the model
        assert planner.model.instruction_encoder.config.pooling == "windows"
    env = gym.make("embodied/Tabletop-v0", image_size=32, views=["front"], tasks=["p1"])
    try:
        result = run_episode(env, planner, seed=100_000, family="p1", max_plan_steps=2)
    finally:
        env.close()
    assert result.steps and result.parse_failures == 0
    stats = planner.stats  # the sensor's input work counts as planning time
    assert stats.instruction_seconds > 0
    assert stats.seconds == pytest.approx(sum(stats.latencies) + stats.instruction_seconds)
    if sensor == "audio":
        with pytest.raises(ValueError, match="asks the model questions in text"):
            PalmEPlanner(tmp_path / "run" / FINAL, failure_detection="model")


def test_a_planner_trained_behind_a_recognizer_reads_its_transcripts(
    dataset, tmp_path, monkeypatch
):
    make_encoder("audio", n_mels=16, width=16, layers=1, heads=2, tokens=3, dim=16).save(
        tmp_path / "recognizer"
    )
    spoken: list[int] = []

    def transcribe(self, batch):  # an untrained recognizer writes noise: script it
        spoken.extend(batch["audio_lengths"].tolist())
        return ["how to grasp obj 9"] * len(batch["audio_lengths"])  # no scene has obj_9

    monkeypatch.setattr(AudioEncoder, "transcribe", transcribe)
    prompts: list[str] = []  # the planner's training and held-out prompts (not the LM's text)
    make_examples = embodied.train.examples

    def recording(*args, **kwargs):
        made = make_examples(*args, **kwargs)
        prompts.extend(made[0])
        return made

    monkeypatch.setattr(embodied.train, "examples", recording)
    config = run_config(
        dataset,
        tmp_path / "run",
        steps=2,
        eval_every=2,
        eval_examples=2,
        checkpoint_every=2,
        recognizer=str(tmp_path / "recognizer"),
        spoken_variants=2,
    )
    train(config)
    assert prompts and all("How to grasp obj_9?" in prompt for prompt in prompts), prompts[:2]
    assert spoken and all(length > 50 for length in spoken), "each instruction was spoken"


def test_fine_tuning_starts_from_the_saved_planner(dataset, tmp_path):
    """init_checkpoint trains on from a saved planner's weights (no LM pretrained anew), and
    refuses one saved with other model settings."""
    train(run_config(dataset, tmp_path / "first", steps=2, eval_every=2, checkpoint_every=2))
    first = tmp_path / "first" / FINAL
    config = run_config(
        dataset,
        tmp_path / "second",
        steps=1,
        eval_every=1,
        checkpoint_every=1,
        lr=1e-9,
        init_checkpoint=str(first),
        spread_rows=0.5,
    )
    train(config)
    saved, tuned = PalmE.load(first), PalmE.load(tmp_path / "second" / FINAL)
    fresh = tiny_model(saved.tokenizer)
    for name, weight in saved.encoder.state_dict().items():
        assert torch.allclose(tuned.encoder.state_dict()[name], weight, atol=1e-6), name
    difference = max(
        float((fresh.encoder.state_dict()[n] - w).abs().max())
        for n, w in saved.encoder.state_dict().items()
    )
    assert difference > 1e-3, "a new planner's encoder differs from the saved one"
    assert not (tmp_path / "second" / "lm").exists(), "no LM was pretrained for it"
    other = run_config(
        dataset,
        tmp_path / "third",
        init_checkpoint=str(first),
        model=ModelConfig(failure_reasons=True),
    )
    with pytest.raises(ValueError, match=r"model\.failure_reasons=False there, True here"):
        train(other)


def test_tiny_train_plan_execute_end_to_end(dataset, tmp_path):
    train(run_config(dataset, tmp_path, steps=20, lr=1e-2))
    env = gym.make("embodied/Tabletop-v0", image_size=32, views=["front"], tasks=["p1"])
    try:
        for decoding in ("free", "constrained"):
            planner = PalmEPlanner(tmp_path / FINAL, decoding=decoding)
            result = run_episode(env, planner, seed=100_000, family="p1", max_plan_steps=4)
            assert result.steps, "the planner wrote steps and the episode ran them"
            assert planner.stats.calls >= 1 and planner.stats.seconds > 0
            assert planner.stats.instruction_seconds == 0.0, "it reads its instruction"
            if decoding == "constrained":
                assert result.parse_failures == 0
                assert all(s.parse_error == "" for s in result.steps)
                assert any(s.success is not None for s in result.steps) or result.plan == "done()"
    finally:
        env.close()


def test_two_processes_train_with_distributed_data_parallel(dataset, tmp_path):
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "embodied.train",
        f"data={dataset}",
        f"output_dir={tmp_path}",
        "steps=8",
        "batch_size=8",
        "eval_every=8",
        "eval_examples=4",
        "checkpoint_every=8",
        "progress=false",
        "lm.hidden=32",
        "lm.layers=1",
        "lm.heads=2",
        "lm.intermediate=64",
        "lm.vocab_size=320",
        "lm.pretrain_steps=3",
    ]
    done = subprocess.run(
        command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 process(es) on cpu" in done.stdout
    metrics = [json.loads(line) for line in (tmp_path / METRICS).read_text().splitlines()]
    assert [m["step"] for m in metrics] == [8], "rank 0 alone logs"
    assert torch.isfinite(torch.tensor(metrics[0]["eval_loss"]))
    trained = PalmE.load(tmp_path / FINAL).lm.state_dict()
    pretrained, _ = load_lm(tmp_path / "lm")  # rank 0's text-only LM, where both ranks began
    changed = [k for k, v in pretrained.state_dict().items() if not torch.equal(v, trained[k])]
    assert changed, "the DDP steps trained the LM"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"encoder": "sonar"}, "encoder='sonar': allowed"),
        ({"steps": 0}, "steps=0: must be >= 1"),
        ({"spoken_variants": 0}, "spoken_variants=0: must be >= 1"),
        ({"recognizer": "nowhere"}, r"recognizer=nowhere: no encoder\.json there"),
        (
            {"recognizer": "nowhere", "model": ModelConfig(instruction_sensor="audio")},
            "a recognizer goes in front of a planner that reads",
        ),
        ({"device": "tpu"}, "device='tpu': allowed"),
        (
            {"instruction_encoder_checkpoint": "runs/encoder_audio/final"},
            "needs model.instruction_sensor",
        ),
        (
            {"instruction_encoder_config": {"pooling": "windows"}},
            "needs model.instruction_sensor",
        ),
        (
            {"encoder": "audio", "model": ModelConfig(instruction_sensor="audio")},
            "the scene sensor must be",
        ),
        (
            {
                "relabel_entities": True,
                "model": ModelConfig(
                    entity_prefix=False, mention_tokens=False, keep_placeholder=False
                ),
            },
            "relabel_entities=true needs model.entity_prefix=true",
        ),
        ({"spread_rows": 1.0, "encoder": "vit"}, "spread_rows=1.0 needs encoder=state"),
        ({"spread_rows": 1.5}, r"spread_rows=1.5: a fraction, must be in \[0, 1\]"),
        ({"init_checkpoint": "runs"}, "init_checkpoint=runs: no saved planner there"),
        (
            {"init_checkpoint": "embodied/checkpoints/palme", "encoder_checkpoint": "x"},
            "the planner brings its own encoder",
        ),
    ],
)
def test_bad_train_configs_name_the_field(overrides, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        run_config("data", tmp_path, **overrides)


def test_relabelling_renames_every_entity_consistently_and_covers_every_label():
    record = {
        "instruction": "Stack obj_3 on obj_1.",
        "kind": "plan",
        "entities": ["obj_1", "obj_2", "obj_3"],
        "history": ["pick(obj_3)", "pick(obj_1)"],
        "history_success": [True, False],
        "history_reasons": ["", "the gripper already holds obj_3"],
        "target": "place(obj_3, obj_1)",
    }
    rng = np.random.default_rng(0)
    seen: set[str] = set()
    for _ in range(40):
        out = relabel_entities(record, rng)
        first, _, third = out["entities"]
        assert len(set(out["entities"])) == 3
        assert sorted(out["entities"], key=lambda e: int(e[4:])) == out["entities"]
        assert out["instruction"] == f"Stack {third} on {first}."
        assert out["history"] == [f"pick({third})", f"pick({first})"]
        assert out["history_reasons"] == ["", f"the gripper already holds {third}"]
        assert out["target"] == f"place({third}, {first})"
        assert out["history_success"] == [True, False] and record["entities"][0] == "obj_1"
        seen |= set(out["entities"])
    assert seen == {f"obj_{j}" for j in range(1, OBJECT_CAPACITY + 1)}
    kitchen = {**record, "entities": ["apple", "drawer"], "target": "pick(apple)"}
    assert relabel_entities(kitchen, rng) is kitchen, "word-named entities stay"


def test_spreading_a_fraction_spreads_about_that_share_of_the_examples(dataset):
    bank = FrameBank(dataset, "train")
    index = list(range(len(bank)))[:40]
    rng = np.random.default_rng(0)
    spread = [sum("rows" in r for r in frame_records(bank, index, rng, spread=0.5))]
    spread += [sum("rows" in r for r in frame_records(bank, index, rng, spread=0.5))]
    assert all(8 <= n <= 32 for n in spread), spread
    assert not any("rows" in r for r in frame_records(bank, index, rng, spread=0.0))
    assert all("rows" in r for r in frame_records(bank, index, rng, spread=1.0))


def test_spread_rows_move_objects_relations_and_placeholders_together(dataset):
    """Spreading a scene over the sensor's rows moves each object's row, its support relation
    and the placeholder its name is bound to as one: every row gets used, and the spread
    scene is the same scene."""
    bank = FrameBank(dataset, "train")
    index = list(range(12))
    rng = np.random.default_rng(0)
    records = frame_records(bank, index, rng, spread=1.0)
    observation = bank.observations(torch.as_tensor(index))
    moved = move_object_rows(observation, records)
    used: set[int] = set()
    for b, record in enumerate(records):
        rows, n = record["rows"], len(record["entities"])
        assert rows == sorted(set(rows)) and len(rows) == n
        used |= set(rows)
        assert torch.equal(moved[keys.OBJECTS][b, rows], observation[keys.OBJECTS][b, :n])
        assert moved[keys.OBJECT_MASK][b].nonzero().flatten().tolist() == rows
        prompt = prompt_text(record["instruction"], record["kind"], record["entities"], rows=rows)
        for name, row in zip(record["entities"], rows, strict=True):
            assert f"{name} is <obj_{row + 1}>." in prompt
    assert used == set(range(OBJECT_CAPACITY)), "spread scenes read every row"
    before = support_relations(observation[keys.OBJECTS], observation[keys.OBJECT_MASK].bool())
    after = support_relations(moved[keys.OBJECTS], moved[keys.OBJECT_MASK].bool())
    assert int(before.sum()) > 0, "the frames hold stacked cubes"
    for b, record in enumerate(records):
        rows, n = torch.as_tensor(record["rows"]), len(record["entities"])
        assert torch.equal(after[b][rows][:, rows], before[b, :n, :n])
        assert int(after[b].sum()) == int(before[b].sum())
    kitchen = {**records[0], "entities": ["apple", "drawer"]}
    assert spread_rows(kitchen, rng) is kitchen, "word-named entities keep their rows"
    shrunk = [{**records[0], "rows": records[0]["rows"][:-1]}]
    with pytest.raises(ValueError, match=r"spreading rows needs rows 0\.\."):
        move_object_rows({k: v[:1] for k, v in observation.items()}, shrunk)
    with pytest.raises(ValueError, match=r"rows=\[3, 1\] for 2 entities: allowed 2 distinct"):
        prompt_text("How to grasp obj_1?", "plan", ["obj_1", "obj_2"], rows=[3, 1])


def test_resampled_questions_are_true_of_their_frame(dataset):
    bank = FrameBank(dataset, "train")
    questions = [r for r in bank.records if r["family"] == "q1"]
    plans = [r for r in bank.records if r["kind"] == "plan"]
    assert questions and plans
    rng = np.random.default_rng(0)
    asked: set[str] = set()
    for record in questions:
        state = SymbolicState.from_json(record["symbolic_state"])
        assert state.to_json() == record["symbolic_state"], "the stored state round-trips"
        for _ in range(5):
            out = resample_question(record, rng)
            named = out["instruction"].removeprefix("What colour is ").removesuffix("?")
            assert out["target"] == state.objects[named].colour
            assert out["entities"] == record["entities"] and out["seed"] == record["seed"]
            asked.add(f"{record['seed']}:{named}")
    assert len(asked) > len(questions), "other objects of the same scenes are asked about"
    assert resample_question(plans[0], rng) is plans[0], "plans are left as they are"
    index = [bank.records.index(questions[0])]
    assert frame_records(bank, index)[0] is questions[0], "no resampling unless asked"
    with pytest.raises(ValueError, match=r"relabelling draws obj_j labels; entity_names='colo"):
        frame_records(bank, index, np.random.default_rng(0), relabel=True, entity_names="colour")
    with pytest.raises(ValueError, match="needs draws"):
        frame_records(bank, index, resample=True)


def test_resampled_feasibility_questions_answer_by_the_symbolic_check():
    def cube(name: str, support: str) -> ObjectState:
        return ObjectState(name, "red", 0.04, (0.5, 0.0, 0.02), 0.0, support)

    # obj_2 stands on obj_1; obj_3 and obj_4 on the table
    state = SymbolicState(
        {
            "obj_1": cube("obj_1", "table"),
            "obj_2": cube("obj_2", "obj_1"),
            "obj_3": cube("obj_3", "table"),
            "obj_4": cube("obj_4", "table"),
        }
    )
    record = {
        "family": "q4",
        "kind": "question",
        "instruction": "Is it possible to first grasp obj_3, then place it on obj_4, and then "
        "grasp obj_1?",
        "target": "no",
        "entities": list(state.objects),
        "symbolic_state": state.to_json(),
    }
    pattern = re.compile(r"grasp (obj_\d), then place it on (obj_\d), and then grasp (obj_\d)")
    rng = np.random.default_rng(1)
    answers = Counter()
    for _ in range(60):
        out = resample_question(record, rng)
        match = pattern.search(out["instruction"])
        assert match is not None, out["instruction"]
        assert out["target"] == ("yes" if is_feasible(state, *match.groups()) else "no")
        answers[out["target"]] += 1
    assert answers["yes"] > 10 and answers["no"] > 10, answers
    kitchen = {**record, "family": "success_detection"}
    assert resample_question(kitchen, rng) is kitchen


def test_q4_answers_follow_their_checks_from_the_frame(feasibility_dataset):
    bank = FrameBank(feasibility_dataset, "train")
    feasibility = [r for r in bank.records if r["family"] == "q4"]
    assert {r["target"] for r in feasibility} == {"yes", "no"}, "the corpus asks both"
    index = [bank.records.index(r) for r in feasibility]
    explained = frame_records(bank, index, rationales=True)
    for record, out in zip(feasibility, explained, strict=True):
        state = SymbolicState.from_json(record["symbolic_state"])
        *facts, answer = out["target"].split(". ")
        assert answer == record["target"] and out["instruction"] == record["instruction"]
        cubes = re.search(
            r"grasp (obj_\d+), then place it on (obj_\d+), and then grasp (obj_\d+)",
            record["instruction"],
        )
        assert cubes is not None
        first, second, third = cubes.groups()
        assert [fact.split(" ")[0] for fact in facts] == [first, second, "then"]
        assert facts[-1].split(" ")[1] == third, "the last check is of the third cube, after"
        for fact in facts:
            cube, _, cover = fact.removeprefix("then ").partition(" is below ")
            if cover:  # the cover stands there now, or will once the first cube is placed
                assert state.objects[cover].support == cube or (cube, cover) == (second, first)
            else:
                assert fact.endswith(" is on top")
        assert (answer == "yes") == all(f.endswith(" is on top") for f in facts)
    plan = next(r for r in bank.records if r["kind"] == "plan")
    assert explain_answer(plan) is plan
    relabelled = frame_records(bank, index, np.random.default_rng(0), relabel=True, rationales=True)
    for record, plain, out in zip(feasibility, explained, relabelled, strict=True):
        # the checks are read before relabelling and name the relabelled cubes, as the prompt does
        names = dict(zip(record["entities"], out["entities"], strict=True))
        assert out["target"] == rename(plain["target"], names)
    infeasible = next(r for r in feasibility if r["target"] == "no")
    with pytest.raises(ValueError, match="answer and symbolic state disagree"):
        explain_answer({**infeasible, "target": "yes"})


def test_the_longest_q4_checks_fit_a_reply_in_the_shipped_tokenizer():
    def cube(name: str, support: str) -> ObjectState:
        return ObjectState(name, "red", 0.04, (0.5, 0.0, 0.02), 0.0, support)

    # obj_8 on obj_7 on obj_6 on obj_5, obj_9 in the hand: every check of "grasp obj_6, place
    # it on obj_5, then grasp obj_7" fails, each naming its cover
    names = {"obj_5": "table", "obj_6": "obj_5", "obj_7": "obj_6", "obj_8": "obj_7"}
    cubes = {name: cube(name, support) for name, support in names.items()}
    state = SymbolicState({**cubes, "obj_9": cube("obj_9", "table")}, held="obj_9")
    record = {
        "family": "q4",
        "kind": "question",
        "instruction": FEASIBILITY_QUESTION.format(grasp="obj_6", base="obj_5", then="obj_7"),
        "target": "no",
        "symbolic_state": state.to_json(),
    }
    target = explain_answer(record)["target"]
    assert target.count(" is below ") == 3 and "obj_9 is grasped" in target, target
    tokenizer = AutoTokenizer.from_pretrained(ROOT / "embodied" / "checkpoints" / "palme")
    reply = tokenizer.encode(" " + target, add_special_tokens=False)
    assert len(reply) <= MAX_REPLY_TOKENS, tokenizer.convert_ids_to_tokens(reply)


def targets_written_by(monkeypatch, name: str, write) -> list[str]:
    """The targets ``embodied.train.<name>`` (= ``write``) gives from now on, in order."""
    targets: list[str] = []

    def write_and_keep(record: dict) -> dict:
        out = write(record)
        targets.append(out["target"])
        return out

    monkeypatch.setattr(f"embodied.train.{name}", write_and_keep)
    return targets


def test_training_with_question_rationales_runs(feasibility_dataset, tmp_path, monkeypatch):
    explained = targets_written_by(monkeypatch, "explain_answer", explain_answer)
    config = run_config(
        feasibility_dataset, tmp_path, steps=2, eval_every=2, question_rationales=True
    )
    metrics = train(config)
    assert np.isfinite(metrics["eval_loss"]) and "q4_accuracy" in metrics
    assert any(t.endswith(" is on top. yes") for t in explained), "q4 answers follow checks"
    assert any(t.endswith(". no") for t in explained)
    saved = json.loads((tmp_path / FINAL / "train_config.json").read_text())
    assert saved["question_rationales"] is True


def test_scene_descriptions_ask_any_frame_which_cube_rests_on_which(feasibility_dataset):
    bank = FrameBank(feasibility_dataset, "train")
    index = range(len(bank))
    described = frame_records(bank, index, described=True, rationales=True)
    assert {r["family"] for r in bank.records} == {"p2", "q4"}
    for record, out in zip(bank.records, described, strict=True):
        state = SymbolicState.from_json(record["symbolic_state"])
        assert out["target"] == describe_support(state), "no q4 checks: the scene alone"
        assert (out["kind"], out["family"], out["instruction"]) == (
            "question",
            SCENE_FAMILY,
            SUPPORT_QUESTION,
        )
        assert out["history"] == out["history_success"] == out["history_reasons"] == []
        assert out["entities"] == record["entities"]
    assert any(" is below " in r["target"] for r in described), "the corpus holds stacks"
    relabelled = frame_records(bank, index, np.random.default_rng(0), relabel=True, described=True)
    for plain, out in zip(described, relabelled, strict=True):
        names = dict(zip(plain["entities"], out["entities"], strict=True))
        assert out["target"] == rename(plain["target"], names)
    kitchen = {**bank.records[0], "family": "success_detection"}
    with pytest.raises(ValueError, match=r"tabletop frames .* family 'success_detection'"):
        describe_scene(kitchen)


def test_training_with_scene_descriptions_adds_them_to_every_batch(
    feasibility_dataset, tmp_path, monkeypatch
):
    asked = targets_written_by(monkeypatch, "describe_scene", describe_scene)
    config = run_config(
        feasibility_dataset, tmp_path, steps=2, eval_every=2, scene_descriptions=0.5
    )
    metrics = train(config)
    # 2 steps x 4 extra frames (half of batch_size=8), then the held-out frames described
    held_out = min(len(FrameBank(feasibility_dataset, "eval")), config.eval_examples, 32)
    assert len(asked) == 2 * 4 + held_out
    assert 0.0 <= metrics["scene_accuracy"] <= 1.0 and "q4_accuracy" in metrics
    saved = json.loads((tmp_path / FINAL / "train_config.json").read_text())
    assert saved["scene_descriptions"] == 0.5


def test_scene_descriptions_are_checked():
    with pytest.raises(ValueError, match=r"scene_descriptions=1.5: must be in \[0, 1\]"):
        TrainConfig(scene_descriptions=1.5)
    with pytest.raises(ValueError, match=r"model\.instruction_sensor=audio: the description"):
        TrainConfig(scene_descriptions=0.25, model=ModelConfig(instruction_sensor="audio"))


def test_extra_questions_ask_empty_hand_frames_a_q4_question(feasibility_dataset):
    bank = FrameBank(feasibility_dataset, "train")
    askable = askable_frames(bank).tolist()
    states = [SymbolicState.from_json(r["symbolic_state"]) for r in bank.records]
    assert askable == [i for i, state in enumerate(states) if state.held is None]
    assert 0 < len(askable) < len(bank), "p2 plans hold frames with a cube in the hand"
    asked = frame_records(bank, askable, np.random.default_rng(0), rationales=True, asked="q4")
    answers = Counter()
    for i, out in zip(askable, asked, strict=True):
        record = bank.records[i]
        assert (out["kind"], out["family"]) == ("question", "q4")
        assert out["history"] == out["history_success"] == out["history_reasons"] == []
        assert out["entities"] == record["entities"]
        checks = question_checks(states[i], out["instruction"])
        assert checks is not None, f"not a q4 question of the frame's cubes: {out['instruction']}"
        answer = "yes" if all(c.passed for c in checks) else "no"
        assert out["target"] == ". ".join([*(c.fact for c in checks), answer])
        answers[answer] += 1
    assert answers["yes"] and answers["no"], "rejection sampling asks both ways"
    held = next(i for i, state in enumerate(states) if state.held is not None)
    with pytest.raises(ValueError, match=r"empty hand .* holding 'obj_\d'"):
        ask_question(bank.records[held], "q4", np.random.default_rng(0))
    kitchen = {**bank.records[askable[0]], "family": "success_detection"}
    with pytest.raises(ValueError, match=r"family 'success_detection'"):
        ask_question(kitchen, "q4", np.random.default_rng(0))


def test_training_with_extra_questions_adds_them_to_every_batch(
    feasibility_dataset, tmp_path, monkeypatch
):
    asked: list[dict] = []

    def ask_and_keep(record: dict, family: str, rng: np.random.Generator) -> dict:
        asked.append(ask_question(record, family, rng))
        return asked[-1]

    monkeypatch.setattr("embodied.train.ask_question", ask_and_keep)
    explained = targets_written_by(monkeypatch, "explain_answer", explain_answer)
    config = run_config(
        feasibility_dataset,
        tmp_path,
        steps=2,
        eval_every=2,
        question_rationales=True,
        extra_questions={"q4": 0.5, "q1": 0.25},
    )
    metrics = train(config)
    # 2 steps x (4 + 2) extra frames (half and a quarter of batch_size=8); none held out
    assert Counter(r["family"] for r in asked) == {"q4": 2 * 4, "q1": 2 * 2}
    assert all(r["target"] in ("yes", "no") for r in asked if r["family"] == "q4")
    assert all(r["target"] in PALETTE for r in asked if r["family"] == "q1")
    rationales = [t for t in explained if t.endswith((". yes", ". no"))]
    assert len(rationales) >= 2 * 4, "the extra q4 questions are answered after their checks"
    assert "q4_accuracy" in metrics
    saved = json.loads((tmp_path / FINAL / "train_config.json").read_text())
    assert saved["extra_questions"] == {"q4": 0.5, "q1": 0.25}
    with pytest.raises(ValueError, match=r"extra_questions.q4=-0.1: must be in \[0, 1\]"):
        TrainConfig(extra_questions={"q4": -0.1})
    with pytest.raises(ValueError, match=r"family 'p1': allowed \['q1', 'q2', 'q3', 'q4'\]"):
        TrainConfig(extra_questions={"p1": 0.25})


def test_training_with_resampled_questions_runs(dataset, tmp_path):
    metrics = train(run_config(dataset, tmp_path, steps=2, eval_every=2, resample_questions=True))
    assert np.isfinite(metrics["eval_loss"])
    saved = json.loads((tmp_path / FINAL / "train_config.json").read_text())
    assert saved["resample_questions"] is True


def test_bad_model_settings_name_the_field():
    with pytest.raises(ValueError, match=r"model\.projector='conv'"):
        ModelConfig(projector="conv")
    with pytest.raises(ValueError, match=r"instruction_sensor='sonar': allowed \(None, 'audio'"):
        ModelConfig(instruction_sensor="sonar")
    with pytest.raises(ValueError, match=r"freeze_instruction_backbone=true needs model\.instr"):
        ModelConfig(freeze_instruction_backbone=True)
    with pytest.raises(ValueError, match=r"lm\.hidden=30 must be a multiple of lm\.heads=4"):
        LMConfig(hidden=30)


def test_train_refuses_a_missing_dataset(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "embodied.train", f"data={tmp_path}/none", f"output_dir={tmp_path}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "generate a dataset there first" in done.stderr


@pytest.fixture(scope="module")
def checkpoint(dataset, tmp_path_factory) -> Path:
    output = tmp_path_factory.mktemp("planner")
    train(run_config(dataset, output, steps=2, eval_every=2, checkpoint_every=2))
    return output / FINAL


def scripted(planner: PalmEPlanner, answers: dict[str, list[str]], prompts: list[str]) -> None:
    """Replace the model's decoding by scripted texts (per prompt kind), recording the prompts."""

    def generate(env, observation, prompt, allowed, instruction_arrays):
        prompts.append(prompt)
        return answers["question" if prompt.endswith("A:") else "plan"].pop(0)

    planner._generate = generate  # type: ignore[method-assign]


def blocked_scene(env) -> tuple[int, str]:
    """A seed whose scene has a cube under another one, and that cube's name."""
    for seed in range(100):
        env.reset(seed=seed, options={"task": "p1"})
        state = env.unwrapped.symbolic_state()
        for name in env.unwrapped.entities:
            if not state.is_clear(name):
                return seed, name
    raise AssertionError("no stacked scene in 100 seeds")


def test_a_failed_step_is_marked_in_the_next_prompt(checkpoint, make_env):
    env = make_env(image_size=32, views=["front"], tasks=["p1"], stack_probability=1.0)
    seed, blocked = blocked_scene(env)
    planner = PalmEPlanner(checkpoint)
    prompts: list[str] = []
    scripted(planner, {"plan": [f"pick({blocked})", "done()"]}, prompts)
    result = run_episode(env, planner, seed, "p1")
    assert result.steps[0].success is False and "blocked" in result.steps[0].reason
    assert prompts[1].endswith(f"Done: pick({blocked}) [failed]. Next:"), prompts[1]


def test_a_planner_trained_with_failure_reasons_reads_why_a_step_failed(
    dataset, tmp_path, make_env
):
    model = ModelConfig(entity_names="colour", failure_reasons=True)
    train(run_config(dataset, tmp_path, steps=2, model=model))
    env = make_env(image_size=32, views=["front"], tasks=["p1"], stack_probability=1.0)
    seed, blocked = blocked_scene(env)
    scene = env.unwrapped
    blocker = scene.symbolic_state().above(blocked)[0]
    colour, blocker_colour = scene.cube(blocked).colour, scene.cube(blocker).colour
    prompts: list[str] = []
    planner = PalmEPlanner(tmp_path / FINAL)
    scripted(planner, {"plan": [f"pick({colour})", "done()"]}, prompts)
    result = run_episode(env, planner, seed, "p1")
    assert result.steps[0].reason == f"{blocked} is blocked by {blocker}", "said in labels"
    reason = f"{colour} is blocked by {blocker_colour}"
    assert prompts[1].endswith(f"Done: pick({colour}) [failed: {reason}]. Next:"), prompts[1]
    detecting = PalmEPlanner(tmp_path / FINAL, failure_detection="model")
    prompts.clear()
    scripted(detecting, {"plan": [f"pick({colour})", "done()"], "question": ["no"]}, prompts)
    run_episode(env, detecting, seed, "p1")
    assert prompts[-1].endswith(f"Done: pick({colour}) [failed]. Next:"), "the model's no reason"


def test_model_failure_detection_asks_the_model_and_marks_its_answer(checkpoint, make_env):
    env = make_env(image_size=32, views=["front"], tasks=["p1"])
    env.reset(seed=0, options={"task": "p1"})
    name = env.unwrapped.entities[0]
    planner = PalmEPlanner(checkpoint, failure_detection="model")
    prompts: list[str] = []
    scripted(planner, {"plan": [f"pick({name})", "done()"], "question": ["no"]}, prompts)
    result = run_episode(env, planner, 0, "p1")
    assert result.steps[0].text == f"pick({name})"
    entities = list(env.unwrapped.entities)
    assert prompts[1] == planner.model.prompt(f"Was pick({name}) successful?", "question", entities)
    assert prompts[2].endswith(f"Done: pick({name}) [failed]. Next:"), "the model's 'no' counts"


def test_a_colour_named_planner_reads_and_writes_colours_and_the_env_gets_labels(
    dataset, tmp_path, make_env
):
    bank = FrameBank(dataset, "train")
    records = frame_records(bank, range(len(bank)), entity_names="colour")
    for named, stored in zip(records, bank.records, strict=True):
        colours = [stored["symbolic_state"]["objects"][e]["colour"] for e in stored["entities"]]
        assert named["entities"] == colours
        assert "obj_" not in named["instruction"] + named["target"] + "".join(named["history"])
    train(run_config(dataset, tmp_path, steps=2, model=ModelConfig(entity_names="colour")))
    env = make_env(image_size=32, views=["front"], tasks=["p1"], stack_probability=1.0)
    seed, blocked = blocked_scene(env)
    colour = env.unwrapped.cube(blocked).colour
    planner = PalmEPlanner(tmp_path / FINAL)
    prompts: list[str] = []
    scripted(planner, {"plan": [f"pick({colour})", "done()"]}, prompts)
    result = run_episode(env, planner, seed, "p1")
    assert result.steps[0].text == f"pick({blocked})", "the env runs the step on the label"
    assert result.steps[0].success is False, "the blocked cube's pick failed in physics"
    assert not re.search(r"(?<!<)obj_\d", prompts[0] + prompts[1]), "only placeholders"
    assert "Q: How to grasp " + colour in prompts[0]
    assert prompts[1].endswith(f"Done: pick({colour}) [failed]. Next:"), prompts[1]
    allowed: list[list[str] | None] = []

    def generate(env, observation, prompt, allowed_texts, instruction_arrays):
        allowed.append(allowed_texts)
        return "done()"

    constrained = PalmEPlanner(tmp_path / FINAL, decoding="constrained")
    constrained._generate = generate  # type: ignore[method-assign]
    run_episode(env, constrained, seed, "p1")
    assert allowed[0] is not None and f"pick({colour})" in allowed[0]
    assert not any("obj_" in step for step in allowed[0])


def test_a_rejected_free_step_is_decoded_again_constrained(checkpoint, make_env):
    env = make_env(image_size=32, views=["front"], tasks=["p1"])
    planner = PalmEPlanner(checkpoint, decoding="free")
    allowed_per_call: list[bool] = []
    texts = ["fly(obj_1)", "done()"]

    def generate(env, observation, prompt, allowed, instruction_arrays):
        allowed_per_call.append(allowed is not None)
        return texts.pop(0)

    planner._generate = generate  # type: ignore[method-assign]
    result = run_episode(env, planner, 0, "p1")
    assert result.parse_failures == 1 and result.steps[0].parse_error
    assert allowed_per_call == [False, True], "free first, constrained after the rejection"


def test_mention_tokens_follow_each_named_entity_in_the_instruction(tokenizer):
    prompt = prompt_text(
        "How to stack obj_2 on top of obj_1?",
        "plan",
        ["obj_1", "obj_2", "obj_3"],
        ["pick(obj_3)"],
        mention_tokens=True,
    )
    assert prompt == (
        "obj_1 is <obj_1>. obj_2 is <obj_2>. obj_3 is <obj_3>. "
        "Q: How to stack obj_2 <obj_2> on top of obj_1 <obj_1>? Done: pick(obj_3). Next:"
    )
    ids = encode(tokenizer, [prompt]).input_ids
    sensor = torch.randn(1, 8, 4)
    out = inject(torch.zeros(*ids.shape, 4), ids, tokenizer, OBJECTS, sensor)
    obj_2 = (ids[0] == tokenizer.convert_tokens_to_ids("<obj_2>")).nonzero().flatten()
    assert len(obj_2) == 2 and all(torch.equal(out[0, t], sensor[0, 1]) for t in obj_2)


def test_without_entity_referrals_the_object_tokens_come_unnamed(tokenizer):
    prompt = prompt_text(
        "How to grasp obj_2?", "plan", ["obj_1", "obj_2", "obj_3"], entity_prefix=False
    )
    assert prompt == "Scene: <obj_1><obj_2><obj_3>. Q: How to grasp obj_2? Next:"
    ids = encode(tokenizer, [prompt]).input_ids
    sensor = torch.randn(1, 8, 4)
    out = inject(torch.zeros(*ids.shape, 4), ids, tokenizer, OBJECTS, sensor)
    for j in range(3):  # the j-th token of the sequence is still object j's
        position = (ids[0] == tokenizer.convert_tokens_to_ids(f"<obj_{j + 1}>")).nonzero()
        assert torch.equal(out[0, int(position)], sensor[0, j])
    with pytest.raises(ValueError, match="entity_prefix=false needs"):
        ModelConfig(entity_prefix=False)  # the mentions and placeholders would name the tokens
    model = tiny_model(tokenizer)
    model.config = ModelConfig(entity_prefix=False, mention_tokens=False, keep_placeholder=False)
    assert model.prompt("How to grasp obj_1?", "plan", ["obj_1"]).startswith("Scene: <obj_1>.")


def test_a_recognizer_in_front_of_a_reading_planner_puts_its_transcript_in_the_prompt(
    checkpoint, make_env, tmp_path
):
    make_encoder("audio", width=32, layers=1, heads=2, tokens=3, dim=16, n_mels=40).save(
        tmp_path / "recognizer"
    )
    planner = PalmEPlanner(checkpoint, recognizer=tmp_path / "recognizer")
    heard: list[int] = []

    def transcribe(batch):  # what an untrained recognizer writes is noise: script it
        heard.append(int(batch["audio_lengths"][0]))
        return ["how to grasp obj 9"]  # no scene has obj_9: it can only come from here

    planner._inputs.recognizer.transcribe = transcribe  # type: ignore[union-attr]
    env = make_env(image_size=32, views=["front"], tasks=["p1"])
    prompts: list[str] = []
    scripted(planner, {"plan": ["pick(obj_1)", "done()"]}, prompts)
    run_episode(env, planner, 0, "p1")
    assert all("How to grasp obj_9?" in prompt for prompt in prompts), prompts
    assert not any(env.unwrapped.task.instruction in prompt for prompt in prompts)
    assert planner.heard(env.unwrapped.task.instruction) == "How to grasp obj_9?"
    assert PalmEPlanner(checkpoint).heard(env.unwrapped.task.instruction) is None

    constrained = PalmEPlanner(
        checkpoint, recognizer=tmp_path / "recognizer", recognition="constrained"
    )
    listened_for: list[list[str]] = []

    def likelihoods(batch, texts):  # scripted: the last sentence listened for is likeliest
        listened_for.append(texts)
        return torch.arange(len(texts), dtype=torch.float32)

    constrained._inputs.recognizer.likelihoods = likelihoods  # type: ignore[union-attr]
    prompts.clear()
    scripted(constrained, {"plan": ["pick(obj_1)", "done()"]}, prompts)
    run_episode(env, constrained, 0, "p1")
    sentences = env.unwrapped.all_instructions()
    assert listened_for == [sentences], "the scene's p1 sentences, listened for once"
    assert sentences[-1] != env.unwrapped.task.instruction
    assert all(f"Q: {sentences[-1]} " in prompt for prompt in prompts), prompts
    with pytest.raises(ValueError, match=r"recognition='loose': allowed \('free', 'constrained'\)"):
        PalmEPlanner(checkpoint, recognizer=tmp_path / "recognizer", recognition="loose")
    assert len(heard) == 1 and heard[0] > 50, "spoken once (100 frames/s), then cached"
    make_encoder("state").save(tmp_path / "not_audio")
    with pytest.raises(ValueError, match="allowed an audio encoder"):
        PalmEPlanner(checkpoint, recognizer=tmp_path / "not_audio")
