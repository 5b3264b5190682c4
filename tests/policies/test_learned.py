"""Learned skills: demonstrations, the policy's shapes and labels, training, and dispatch through
the skill interface."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from embodied.config import (
    GenerateConfig,
    KitchenEnvConfig,
    RolloutConfig,
    TabletopEnvConfig,
    TrainSkillsConfig,
)
from embodied.data.demos import dataset_views, load_demos
from embodied.data.recording import record_episode
from embodied.data.storage import read_shard
from embodied.episode import run_episode
from embodied.generate import generate
from embodied.planners import OraclePlanner
from embodied.train_skills import FINAL, losses, random_shift, train
from embodied.training import TrainingConflict
from envs import keys
from envs.cameras import Camera
from envs.plan import SkillCall
from experiments.benchmark_skills import call_outcomes, success_steps, swapped_calls
from experiments.diagnose_skills import main as diagnose
from experiments.diagnose_skills import r_squared
from experiments.trace_skill import trace
from policies.base import SkillOutcome
from policies.factory import make_skills
from policies.learned import (
    ACTION_DIM,
    DONE_STEPS,
    GRIP,
    LOCATE_SCALE,
    LOCATED_FEATURES,
    MASKS,
    PROPRIO_FEATURES,
    TOOL_CENTRE,
    TOOL_SCALE,
    LearnedSkill,
    LearnedSkills,
    SkillPolicy,
    action_labels,
    call_masks,
    decode_action,
    demonstration_memory,
    located_features,
    mask_centroids,
    policy_batch,
    proprio_features,
    remember,
    remembered_positions,
    sighting_thresholds,
    tool_yaw,
    triangulate,
)
from policies.learned_config import SkillPolicyConfig

SMALL = SkillPolicyConfig(views=["front", "overhead"], image_size=32, channels=8, hidden=32)


@pytest.fixture(scope="module")
def demos_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("demos")
    generate(
        GenerateConfig(
            env=TabletopEnvConfig(views=["front", "overhead"], image_size=32),
            tasks=["p1"],
            demos=True,
            episodes=2,
            eval_episodes=1,
            shard_size=2,
            workers=1,
            progress=False,
            output_dir=str(root),
        )
    )
    return root


def test_demonstrations_hold_every_control_step_of_each_skill(demos_dir):
    shard = sorted((demos_dir / "train").glob("shard_*.h5"))[0]
    record = next(read_shard(shard, demos=True))
    assert record.demos, "a p1 episode runs a pick"
    demo = record.demos[0]
    assert demo.call.startswith("pick(") and demo.success
    steps = len(demo.commands)
    assert steps == record.frames[0].control_steps + 1, "one row per action, plus the stop"
    assert demo.observations[keys.RGB].shape == (steps, 2, 32, 32, 3)
    assert demo.observations[keys.SEGMENTATION].shape == (steps, 2, 32, 32)
    assert demo.commands.shape == (steps, 5)
    # The stop row is the tool where the skill left it.
    final = demo.observations[keys.PROPRIO][-1]
    np.testing.assert_allclose(demo.commands[-1, :3], final[keys.PROPRIO_TOOL_POSITION], atol=1e-5)
    assert dataset_views(demos_dir) == ("embodied/Tabletop-v0", ["front", "overhead"], 32)


def test_labels_give_the_commanded_targets_or_the_demonstrated_path_ahead(demos_dir):
    record = next(read_shard(sorted((demos_dir / "train").glob("shard_*.h5"))[0], demos=True))
    demo = record.demos[0]
    proprio = demo.observations[keys.PROPRIO]
    labels = action_labels(demo.commands, proprio, SMALL)  # (S, ACTION_DIM)
    assert labels.shape == (len(proprio), ACTION_DIM)
    unclipped = np.abs(labels[:, :3]).max(axis=1) < 1.0
    assert unclipped.mean() > 0.95
    tool = proprio[:, keys.PROPRIO_TOOL_POSITION]
    np.testing.assert_allclose(
        (tool + labels[:, :3] * SMALL.max_lead)[unclipped], demo.commands[unclipped, :3], atol=1e-5
    )
    path = action_labels(demo.commands, proprio, replace(SMALL, lookahead=2))
    ahead = tool[np.minimum(np.arange(len(tool)) + 2, len(tool) - 1)]
    unclipped = np.abs(path[:, :3]).max(axis=1) < 1.0
    np.testing.assert_allclose(
        (tool + path[:, :3] * SMALL.max_lead)[unclipped], ahead[unclipped], atol=1e-5
    )
    assert np.abs(path[-1, :3]).max() == 0.0, "the last step goes nowhere"
    np.testing.assert_array_equal(path[:, 3:], labels[:, 3:])
    closed = demo.commands[:, 4] < 0.04
    np.testing.assert_array_equal(labels[:, GRIP], closed)  # 1 where the script closed
    assert 0 < closed.sum() < len(closed), "a pick opens, then closes on the object"
    yaw = tool_yaw(proprio) + labels[:, 3] * SMALL.max_turn
    assert np.abs(labels[:, 3]).max() < 1.0, "no turn is clipped"
    np.testing.assert_allclose(np.cos(yaw), np.cos(demo.commands[:, 3]), atol=1e-4)


def test_decoding_an_action_inverts_its_label(demos_dir):
    record = next(read_shard(sorted((demos_dir / "train").glob("shard_*.h5"))[0], demos=True))
    demo = record.demos[0]
    proprio = demo.observations[keys.PROPRIO]
    labels = action_labels(demo.commands, proprio, SMALL)
    for t in range(len(labels) - 1):  # the stop row holds no command
        position, yaw, width = decode_action(labels[t], proprio[t], SMALL)
        np.testing.assert_allclose(position, demo.commands[t, :3], atol=1e-5)
        assert np.cos(2 * (yaw - demo.commands[t, 3])) == pytest.approx(1.0, abs=1e-6)
        assert -2.0 <= yaw <= 2.0, "within the wrist's range"
        assert width == pytest.approx(demo.commands[t, 4], abs=1e-6)


def test_call_masks_mark_the_named_objects_only():
    segmentation = np.array([[[0, 1], [2, 3]]])  # (V=1, 2, 2)
    masks = call_masks(
        segmentation, SkillCall("place", ("obj_2", "obj_3")), ("obj_1", "obj_2", "obj_3")
    )
    assert masks.shape == (1, MASKS, 2, 2)
    assert masks[0, 0].tolist() == [[0, 0], [1, 0]] and masks[0, 1].tolist() == [[0, 0], [0, 1]]
    table = call_masks(segmentation, SkillCall("place", ("obj_1", "table")), ("obj_1",))
    assert table[0, 1].sum() == 0 and table[0, 0].sum() == 1


def test_policy_shapes_and_safetensors_round_trip(tmp_path):
    policy = SkillPolicy(SMALL)
    rgb = np.random.default_rng(0).integers(0, 255, (3, 2, 32, 32, 3), dtype=np.uint8)
    masks = np.zeros((3, 2, MASKS, 32, 32), np.uint8)
    proprio = np.zeros((3, keys.PROPRIO_DIM), np.float32)
    proprio[:, keys.PROPRIO_TOOL_QUATERNION] = [1.0, 0.0, 0.0, 0.0]
    previous = proprio.copy()
    previous[:, keys.PROPRIO_TOOL_POSITION] -= [0.0, 0.0, 0.01]  # the tool rose a centimetre
    memory = np.zeros((3, MASKS, 4), np.float32)
    inputs = policy_batch(rgb, masks, memory, proprio, previous, np.array([0, 1, 2]), SMALL)
    assert inputs[0].shape == (3, 2, 3 + MASKS, 32, 32)
    assert inputs[1].shape == (3, LOCATED_FEATURES)
    assert inputs[2].shape == (3, PROPRIO_FEATURES)
    np.testing.assert_array_equal(inputs[2][:, 6:].numpy(), 0.0)  # no motion seen by default
    moving = replace(SMALL, motion_inputs=True)
    seen = policy_batch(rgb, masks, memory, proprio, previous, np.array([0, 1, 2]), moving)[2]
    motion = seen[:, 6:9].numpy()  # the tool's motion since the last step / max_lead
    np.testing.assert_allclose(motion, [[0.0, 0.0, 0.01 / SMALL.max_lead]] * 3, atol=1e-6)
    output = policy(*inputs)
    assert output.shape == (3, ACTION_DIM + 1)
    policy.save(tmp_path)
    assert (tmp_path / "policy.safetensors").exists()
    with torch.no_grad():
        assert torch.equal(SkillPolicy.load(tmp_path)(*inputs), policy.eval()(*inputs))
    saved = json.loads((tmp_path / "policy.json").read_text())
    del saved["format"]  # a checkpoint from before the inputs changed
    (tmp_path / "policy.json").write_text(json.dumps(saved))
    with pytest.raises(ValueError, match="input format 1, and this code feeds format 2"):
        SkillPolicy.load(tmp_path)


def test_triangulate_finds_each_object_from_the_views_that_see_it(make_env):
    env = make_env(observe_images=False)
    cameras = [Camera(view, 64) for view in ("front", "left", "right")]
    errors = []
    for seed in range(3):
        env.reset(seed=seed, options={"task": "p2"})
        sim = env.unwrapped
        _, _, segmentation = sim.render_views(cameras)
        for name in sim.entities:
            masks = call_masks(segmentation, SkillCall("pick", (name,)), sim.observed_names)
            positions, located = triangulate(masks, cameras)
            assert located.tolist() == [True, False], "the object is seen; no second argument"
            errors.append(np.abs(positions[0] - sim.object_pose(name)[0]))
            np.testing.assert_array_equal(positions[1], 0.0)
    # The rays pass through the visible surface's centre: a cube's top, not its centre.
    assert np.max(errors) < 0.02, np.max(errors, axis=0)
    one_view = np.zeros((1, MASKS, 64, 64), np.uint8)
    one_view[0, 0, 30:34, 30:34] = 1
    assert not triangulate(one_view, cameras[:1])[1].any(), "one view does not locate"


def test_remembered_positions_outlast_occlusion_and_are_given_relative_to_the_tool():
    positions = np.array([[[0.5, 0.1, 0.02], [0, 0, 0]], [[9, 9, 9], [0, 0, 0]]], np.float32)
    located = np.array([[True, False], [False, False]])  # the object then hidden under the hand
    memory = remembered_positions(positions, located)  # (2 steps, MASKS, 4)
    np.testing.assert_allclose(memory[1, 0], [0.5, 0.1, 0.02, 1.0])
    np.testing.assert_array_equal(memory[:, 1], 0.0)
    np.testing.assert_array_equal(remember(memory[1], positions[1], ~located[1])[1, 3], 1.0)
    proprio = np.zeros((keys.PROPRIO_DIM,), np.float32)
    proprio[keys.PROPRIO_TOOL_POSITION] = [0.4, 0.1, 0.3]
    features = located_features(memory[1], proprio).reshape(MASKS, 4)
    np.testing.assert_allclose(features[0], [0.1 / LOCATE_SCALE, 0.0, -0.28 / LOCATE_SCALE, 1.0])
    np.testing.assert_array_equal(features[1], 0.0)


def test_a_target_half_hidden_keeps_where_it_was_seen_whole_and_a_moving_object_does_not():
    cameras = [Camera(view, 64) for view in ("front", "left")]
    masks = np.zeros((2, 2, MASKS, 64, 64), np.uint8)  # (steps, V, MASKS, H, W)
    masks[0, :, :, 20:26, 30:36] = 1  # both seen whole: 36 pixels in each view
    masks[1, :, 0, 40:46, 30:36] = 1  # the object moved (with the hand), seen whole
    masks[1, :, 1, 24:26, 30:36] = 1  # the target's top hidden: 12 of its 36 pixels left
    memory = demonstration_memory(masks, cameras)  # (2, MASKS, 4)
    np.testing.assert_array_equal(memory[1, 1], memory[0, 1])
    assert memory[1, 0, 3] == 1.0 and np.abs(memory[1, 0, :3] - memory[0, 0, :3]).max() > 0.01
    thresholds = sighting_thresholds(masks.sum(axis=(-2, -1)).max(axis=0))  # (V, MASKS)
    np.testing.assert_allclose(thresholds, [[3.0, 0.7 * 36]] * 2)
    # Without the thresholds the half-hidden target's centroid would have moved it.
    moved = triangulate(masks[1], cameras)[0][1]
    assert np.abs(moved - memory[0, 1, :3]).max() > 0.005


def test_the_tool_position_reaches_the_head_scaled_around_the_workspace():
    proprio = np.zeros((2, keys.PROPRIO_DIM), np.float32)
    proprio[:, keys.PROPRIO_TOOL_QUATERNION] = [1.0, 0.0, 0.0, 0.0]
    proprio[0, keys.PROPRIO_TOOL_POSITION] = TOOL_CENTRE
    proprio[1, keys.PROPRIO_TOOL_POSITION] = np.add(TOOL_CENTRE, [0.0, 0.0, -0.03])
    features = proprio_features(proprio, proprio, SMALL)
    np.testing.assert_allclose(features[:, :3], [[0, 0, 0], [0, 0, -0.03 / TOOL_SCALE]], atol=1e-6)


def test_a_few_training_steps_lower_the_loss(demos_dir):
    demos = load_demos(demos_dir, "train", replace(SMALL, image_size=32))
    assert len(demos) > 20
    starts = np.flatnonzero(np.diff(demos.demo, prepend=-1))  # each demonstration's first step
    assert demos.done.sum() == DONE_STEPS * len(starts), "the last steps of each are done"
    np.testing.assert_array_equal(demos.previous[starts], demos.proprio[starts])
    np.testing.assert_array_equal(demos.previous[starts[0] + 1], demos.proprio[starts[0]])
    torch.manual_seed(0)
    policy = SkillPolicy(SMALL)
    optimizer = torch.optim.Adam(policy.parameters(), lr=3e-3)
    index = np.arange(min(len(demos), 48))
    before, _ = losses(policy, demos, index, 10.0)
    for _ in range(40):
        loss, _ = losses(policy, demos, index, 10.0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after, _ = losses(policy, demos, index, 10.0)
    assert after.item() < 0.5 * before.item()


def test_train_skills_writes_a_policy_that_runs_through_the_skill_interface(
    demos_dir, tmp_path, make_env
):
    metrics = train(
        TrainSkillsConfig(
            data=str(demos_dir),
            policy=replace(SMALL),
            steps=4,
            batch_size=8,
            eval_every=2,
            checkpoint_every=2,
            progress=False,
            output_dir=str(tmp_path),
        )
    )
    assert metrics["step"] == 4 and np.isfinite(metrics["eval_loss"])
    skills = make_skills("learned", str(tmp_path / FINAL))
    assert isinstance(skills, LearnedSkills)
    env = make_env(observe_images=False)
    result = run_episode(env, OraclePlanner(), 100_000, "p1", max_plan_steps=1, skills=skills)
    step = result.steps[0]
    assert step.text.startswith("pick(") and step.success is not None
    assert step.control_steps > 0, "the learned skill acted through env.step"


def test_a_learned_skill_stops_when_the_policy_says_and_is_judged_by_the_simulator(make_env):
    env = make_env(observe_images=False)
    env.reset(seed=0, options={"task": "p1"})
    sim = env.unwrapped
    policy = SkillPolicy(SMALL)
    with torch.no_grad():
        policy.head[-1].bias[ACTION_DIM] = 20.0  # "done" from the first step
    name = sim.entities[0]
    skill = LearnedSkill(sim, SkillCall("pick", (name,)), policy)
    observation = sim.current_observation()
    while (action := skill.act(observation)) is not None:
        assert env.action_space.contains(action)
        observation, *_ = env.step(action)
    assert skill.outcome.steps == LearnedSkill.MIN_STEPS, "a stop is believed after MIN_STEPS"
    assert not skill.outcome.success
    assert skill.outcome.reason.startswith(f"grasp of {name} did not hold")
    slow = LearnedSkill(sim, SkillCall("pick", (name,)), SkillPolicy(SMALL), max_steps=2)
    policy_never_stops = slow.policy
    with torch.no_grad():
        policy_never_stops.head[-1].bias[ACTION_DIM] = -20.0
    while (action := slow.act(observation)) is not None:
        observation, *_ = env.step(action)
    assert slow.outcome == SkillOutcome(False, "timeout after 2 steps", 2)


def test_learned_skills_need_a_checkpoint(tmp_path):
    with pytest.raises(ValueError, match="skills=learned needs skills_checkpoint"):
        RolloutConfig(env=TabletopEnvConfig(), planner="oracle", skills="learned")
    with pytest.raises(ValueError, match="skills='neural': allowed"):
        RolloutConfig(env=TabletopEnvConfig(), planner="oracle", skills="neural")
    with pytest.raises(ValueError, match=r"no policy\.json"):
        SkillPolicy.load(tmp_path)
    with pytest.raises(ValueError, match="only read with skills=learned"):
        RolloutConfig(env=TabletopEnvConfig(), planner="oracle", skills_checkpoint=str(tmp_path))
    SkillPolicy(replace(SMALL, env="embodied/Tabletop-v0")).save(tmp_path)
    with pytest.raises(ValueError, match="learned from embodied/Tabletop-v0 demonstrations"):
        RolloutConfig(
            env=KitchenEnvConfig(),
            planner="oracle",
            skills="learned",
            skills_checkpoint=str(tmp_path),
        )
    with pytest.raises(ValueError, match=r"policy\.channels=6: must be a multiple of 4"):
        SkillPolicyConfig(channels=6)


def test_resuming_with_another_policy_config_is_refused(demos_dir, tmp_path):
    config = TrainSkillsConfig(
        data=str(demos_dir),
        policy=SMALL,
        steps=2,
        batch_size=8,
        eval_every=2,
        checkpoint_every=2,
        progress=False,
        output_dir=str(tmp_path),
    )
    train(config)
    wider = replace(config, steps=4, policy=replace(SMALL, channels=12))
    with pytest.raises(TrainingConflict, match="choose another output_dir"):
        train(wider)
    with pytest.raises(ValueError, match="batch_size=100000: more than the"):
        train(replace(config, batch_size=100_000, resume=False))


def test_random_shift_moves_each_image_with_its_masks_by_at_most_the_given_pixels():
    images = torch.zeros(4, 2, 3 + MASKS, 16, 16)  # (B, V, C, H, W)
    images[:, :, :, 8, 8] = 1.0  # one lit pixel, in every channel
    shifted = random_shift(images, 2, torch.Generator().manual_seed(0))
    assert shifted.shape == images.shape
    lit = shifted.flatten(0, 1).nonzero()  # (B * V * C, 4): image, channel, y, x
    assert len(lit) == 4 * 2 * (3 + MASKS), "the pixel moves, it is not lost or smeared"
    assert ((lit[:, 2:] - 8).abs() <= 2).all()
    per_image = lit.view(4 * 2, 3 + MASKS, 4)[:, :, 2:]
    assert (per_image == per_image[:, :1]).all(), "rgb and masks move together"
    assert len({tuple(p[0].tolist()) for p in per_image}) > 1, "images move on their own"
    assert torch.equal(random_shift(images, 0, torch.Generator()), images)


def test_demonstration_noise_moves_the_arm_off_the_script_but_records_the_script(make_env):
    def first_demo(noise: float):
        env = make_env(views=["front"], image_size=32, observe_images=False)
        record = record_episode(env, 100_000, "p1", "train", {}, False, 1, True, noise)
        return record.demos[0]

    clean, noisy = first_demo(0.0), first_demo(0.02)
    assert clean.call == noisy.call
    steps = min(len(clean.commands), len(noisy.commands))
    path = keys.PROPRIO_TOOL_POSITION
    strayed = np.linalg.norm(
        clean.observations[keys.PROPRIO][:steps, path]
        - noisy.observations[keys.PROPRIO][:steps, path],
        axis=1,
    )
    assert strayed[0] == 0.0 and strayed.max() > 0.005, "the noise moves the arm"
    np.testing.assert_allclose(noisy.commands[0], clean.commands[0], atol=1e-6)
    lead = np.linalg.norm(
        noisy.commands[:-1, :3] - noisy.observations[keys.PROPRIO][:-1, path], axis=1
    )
    assert lead.max() < 0.1, "what is recorded is the script's command near the tool"
    with pytest.raises(ValueError, match="only used with demos=true"):
        GenerateConfig(env=TabletopEnvConfig(), demo_noise=0.01)


def test_mask_centroids_say_where_each_mask_is_and_how_much_it_covers():
    masks = torch.zeros(1, 2, MASKS, 5, 5)  # (B, V, MASKS, H, W)
    masks[0, 0, 0, 0, 4] = 1.0  # view 0, the object: top right corner
    masks[0, 1, 1, 2:4, 0:2] = 1.0  # view 1, the target: a 2 x 2 block, left, below the middle
    features = mask_centroids(masks).view(2, MASKS, 3)  # x, y, share of the image
    np.testing.assert_allclose(features[0, 0].numpy(), [1.0, -1.0, 1 / 25])
    np.testing.assert_allclose(features[1, 1].numpy(), [-0.75, 0.25, 4 / 25])
    assert features[0, 1].abs().sum() == 0 and features[1, 0].abs().sum() == 0, "unseen: zeros"


def test_diagnose_skills_reports_fit_blind_fit_and_early_stops(
    demos_dir, tmp_path, monkeypatch, capsys
):
    labels = np.random.default_rng(0).normal(size=(50, ACTION_DIM))
    np.testing.assert_allclose(r_squared(labels, labels), 1.0)
    np.testing.assert_allclose(
        r_squared(np.broadcast_to(labels.mean(0), labels.shape), labels), 0.0, atol=1e-12
    )
    SkillPolicy(SMALL).save(tmp_path)
    argv = ["diagnose_skills", "--checkpoint", str(tmp_path), "--data", str(demos_dir)]
    monkeypatch.setattr("sys.argv", argv)
    diagnose()
    printed = capsys.readouterr().out
    assert "pick" in printed and "located objects zeroed" in printed and "fire early" in printed


def test_the_skills_benchmark_counts_clean_starts_apart_from_retries_and_times_successes():
    def step(text, success):
        return {"text": text, "success": success, "control_steps": len(text)}

    episodes = [
        {"steps": [step("pick(obj_1)", True), step("place(obj_1, obj_2)", True)]},
        {
            "steps": [
                step("pick(obj_1)", False),  # clean start: the first call
                step("pick(obj_1)", False),  # a retry from the failed state
                step("pick(obj_1)", True),
                step("place(obj_1, table)", False),  # after a success: clean
                step("done()", None),
            ]
        },
    ]
    calls, clean = call_outcomes(episodes)
    assert calls == {"pick": [True, False, False, True], "place": [True, False]}
    assert clean == {"pick": [True, False], "place": [True, False]}
    assert success_steps(episodes) == {"pick": [11, 11], "place": [19]}


def test_trace_skill_prints_each_step_of_a_learned_call_and_rejects_bad_steps(tmp_path, capsys):
    policy = SkillPolicy(replace(SMALL, env="embodied/Tabletop-v0"))
    with torch.no_grad():
        policy.head[-1].bias[ACTION_DIM] = 20.0  # "done" once believed
    policy.save(tmp_path)
    verdict = trace(str(tmp_path), "p1", 100_000)
    printed = capsys.readouterr().out
    assert verdict.startswith("failure: grasp of"), "stopped at once: nothing was lifted"
    step_lines = [line for line in printed.splitlines() if line.strip()[:1].isdigit()]
    assert len(step_lines) == LearnedSkill.MIN_STEPS + 1, "one line per policy call"
    with pytest.raises(ValueError, match="plan steps count from 1"):
        trace(str(tmp_path), "p1", 100_000, step=0)
    with pytest.raises(ValueError, match="the oracle's plan ends at step"):
        trace(str(tmp_path), "p1", 100_000, step=50)
    with pytest.raises(ValueError, match=r"--argument 2: pick\(obj_\d\) has 1 argument"):
        trace(str(tmp_path), "p1", 100_000, argument=2)
    with pytest.raises(ValueError, match=r"1 \(the call's object\) or 2"):
        trace(str(tmp_path), "p1", 100_000, argument=3)


def test_one_call_at_a_time_runs_each_scripted_call_again_from_the_scripts_state(tmp_path):
    scripted = swapped_calls(None, "p1", 100_000)
    assert scripted and all(call["success"] for call in scripted)
    assert scripted[0]["text"].startswith("pick(")
    policy = SkillPolicy(replace(SMALL, env="embodied/Tabletop-v0"))
    with torch.no_grad():
        policy.head[-1].bias[ACTION_DIM] = 20.0  # "done" once believed: nothing gets done
    policy.save(tmp_path)
    learned = swapped_calls(str(tmp_path), "p1", 100_000)
    assert [call["text"] for call in learned] == [call["text"] for call in scripted]
    assert not any(call["success"] for call in learned)
    assert all(call["control_steps"] == LearnedSkill.MIN_STEPS for call in learned)
