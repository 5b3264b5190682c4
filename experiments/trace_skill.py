"""One learned skill call in closed loop, step by step: where the tool is, where the object is,
what the policy commands and how sure it is that it is done.

    python -m experiments.trace_skill --checkpoint runs/skills/final
    python -m experiments.trace_skill --checkpoint runs/skills/final --family tower --seed 100003

The oracle writes the episode's plan; the scripted skills run its steps up to ``--step`` (1, the
first: a pick in the tabletop families), and the policy runs that step through ``env.step``
until it stops or times out; the simulator's verdict is printed.
The quickest way to see how a policy fails: ``experiments.benchmark_skills`` says how often it
does, this says where.
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import numpy as np
import torch

import envs  # noqa: F401  (registers the env ids)
from embodied.planners import OraclePlanner
from envs import keys
from envs.base import ArmEnv
from envs.plan import SkillCall, parse_step
from policies.base import run_skill
from policies.factory import make_skill
from policies.learned import ACTION_DIM, MASKS, LearnedSkill, SkillPolicy, decode_action


def trace(checkpoint: str, family: str, seed: int, step: int = 1, argument: int = 1) -> str:
    """Run oracle step ``step`` of a ``family`` episode on ``seed`` with the learned policy (the
    scripted skills run the steps before it), printing one line per control step with where the
    call's ``argument`` (1: its object, 2: its target) is and where the policy located it;
    returns the outcome's description."""
    if step < 1:
        raise ValueError(f"--step {step}: plan steps count from 1")
    if not 1 <= argument <= MASKS:
        raise ValueError(f"--argument {argument}: 1 (the call's object) or 2 (its target)")
    policy = SkillPolicy.load(checkpoint)
    env = gym.make(policy.config.env, observe_images=False)
    try:
        observation, _ = env.reset(seed=seed, options={"task": family})
        sim: ArmEnv = env.unwrapped  # type: ignore[assignment]
        assert sim.task is not None
        history: list[str] = []
        while True:
            text = OraclePlanner().next_step(sim, observation, history, [])
            call = parse_step(text)
            if not isinstance(call, SkillCall) or call.verb == "done":
                raise ValueError(f"--step {step}: the oracle's plan ends at step {len(history)}")
            history.append(text)
            if len(history) == step:
                break
            ran = run_skill(env, make_skill(sim, call), observation, {}, inject_failure=False)
            observation = ran.observation
            print(f"step {len(history)}, scripted: {text}: {ran.outcome}")
        print(f"{sim.task.instruction!r}: step {step}, {text} (policy {checkpoint})")
        if argument > len(call.args):
            raise ValueError(f"--argument {argument}: {text} has {len(call.args)} argument(s)")
        tracked = call.args[argument - 1]
        skill = LearnedSkill(sim, call, policy)
        outputs: list[np.ndarray] = []
        seen: list[np.ndarray] = []

        def record(
            _: torch.nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor
        ) -> None:
            outputs.append(output[0].numpy())
            pixels = inputs[0][0, :, 3 + argument - 1].sum(dim=(1, 2))  # (V,) the mask's pixels
            seen.append(pixels.numpy())

        policy.register_forward_hook(record)
        views = ", ".join(policy.config.views)
        print(
            f" step | tool x, y, z        width | {tracked} x, y, z      | located x, y, z     "
            f"| command x, y, z      width | done | {tracked} pixels in {views}"
        )
        while True:
            proprio = observation[keys.PROPRIO]
            asked = len(outputs)
            action = skill.act(observation)
            output = outputs[-1] if len(outputs) > asked else None  # a timeout asks nothing
            tool = proprio[keys.PROPRIO_TOOL_POSITION]
            width = float(proprio[keys.PROPRIO_GRIPPER_WIDTH][0])
            obj = sim.object_pose(tracked)[0] if tracked in sim.bodies else np.zeros(3)
            memory = skill.remembered[argument - 1]
            located = _xyz(memory[:3]) if memory[3] else "      not yet      "
            line = f" {skill.steps:4d} | {_xyz(tool)} {width:.3f} | {_xyz(obj)} | {located} |"
            if output is not None:
                target, _, opening = decode_action(output[:ACTION_DIM], proprio, policy.config)
                done = 1.0 / (1.0 + np.exp(-output[ACTION_DIM]))
                pixels = " ".join(f"{int(p):4d}" for p in seen[-1])
                line += f" {_xyz(target)} {opening:.3f} | {done:.2f} | {pixels}"
            print(line)
            if action is None:
                break
            observation, *_ = env.step(action)
    finally:
        env.close()
    assert skill.outcome is not None
    verdict = "success" if skill.outcome.success else f"failure: {skill.outcome.reason}"
    print(f"{call}: {verdict} ({skill.steps} steps)")
    return verdict


def _xyz(v: np.ndarray) -> str:
    return " ".join(f"{float(x):6.3f}" for x in v)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="a train_skills final/ directory")
    parser.add_argument("--family", default="p1")
    parser.add_argument("--seed", type=int, default=100000, help="evaluation seeds are 100000+")
    parser.add_argument("--step", type=int, default=1, help="which plan step the policy runs")
    parser.add_argument(
        "--argument", type=int, default=1, help="follow the call's object (1) or target (2)"
    )
    args = parser.parse_args()
    trace(args.checkpoint, args.family, args.seed, args.step, args.argument)


if __name__ == "__main__":
    main()
