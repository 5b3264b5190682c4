"""The evaluator: its statistics on synthetic outcomes, its jobs and a small real evaluation."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import pytest

from embodied.config import (
    DEFAULT_PLANNER_CHECKPOINT,
    EvaluateConfig,
    KitchenEnvConfig,
    TabletopEnvConfig,
)
from embodied.data.splits import SPLITS
from embodied.evaluate import EVAL_INFO, PLOT, TABLE, evaluate, jobs, summarize, to_markdown
from embodied.statistics import macro_f1, rate_summary, wilson_interval


def test_wilson_intervals_match_known_values():
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)
    assert wilson_interval(50, 100) == pytest.approx((0.4038, 0.5962), abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    low, high = wilson_interval(90, 100)
    assert low < 0.9 < high and high - low < wilson_interval(9, 10)[1] - wilson_interval(9, 10)[0]
    with pytest.raises(ValueError, match="successes=11"):
        wilson_interval(11, 10)
    assert rate_summary(3, 4)["rate"] == 0.75


def test_macro_f1_weighs_both_answers():
    assert macro_f1(["yes", "no", "yes"], ["yes", "no", "yes"]) == 1.0
    # always "yes" where 4 of 5 answers are yes: F1(yes) = 8/9, F1(no) = 0
    assert macro_f1(["yes"] * 4 + ["no"], ["yes"] * 5) == pytest.approx(4 / 9)
    assert macro_f1(["yes", "no"], ["maybe", "maybe"]) == 0.0
    with pytest.raises(ValueError, match="not yes/no"):
        macro_f1(["red"], ["red"])
    with pytest.raises(ValueError, match="2 expected answers but 1"):
        macro_f1(["yes", "no"], ["yes"])


def step(text: str, success: bool | None, parse_error: str = "") -> dict:
    return {"text": text, "success": success, "parse_error": parse_error}


def episode(split: str, family: str, kind: str, success: bool, **fields) -> dict:
    return {
        "split": split,
        "family": family,
        "kind": kind,
        "success": success,
        "progress": float(success),
        "steps": [],
        "parse_failures": 0,
        "answer": None,
        "expected_answer": None,
        "planning_s": 0.5,
        **fields,
    }


def test_summary_of_synthetic_episodes():
    recovered = [
        step("pick(obj_1)", False),  # failed, then re-planned
        step("pick obj_1", None, "malformed"),
        step("pick(obj_1)", True),
        step("done()", None),
    ]
    episodes = [
        episode("eval", "p1", "plan", True, steps=recovered, parse_failures=1),
        episode("eval", "p1", "plan", False, steps=[step("pick(obj_2)", False)]),
        *[
            episode("eval", "q3", "question", e == a, expected_answer=e, answer=a)
            for e, a in [("yes", "yes"), ("no", "no"), ("no", "yes"), ("yes", "yes")]
        ],
        episode("objects_8", "q1", "question", True, expected_answer="red", answer="red"),
    ]
    summary = summarize(episodes)
    assert set(summary) == {"eval", "objects_8"}
    p1 = summary["eval"]["families"]["p1"]
    assert (p1["trials"], p1["rate"]) == (2, 0.5)
    assert p1["mean_plan_length"] == 1.5  # skill calls run: 2 and 1
    assert p1["mean_replans"] == 0.5  # one failure was followed by another planner call
    assert p1["parse_failure_rate"] == 0.2  # 1 of 5 planner outputs
    assert p1["f1"] is None
    q3 = summary["eval"]["families"]["q3"]
    assert q3["rate"] == 0.75
    assert q3["f1"] == pytest.approx((0.8 + 2 / 3) / 2, abs=1e-4)
    assert q3["mean_plan_length"] is None
    assert summary["eval"]["overall"]["trials"] == 6
    assert summary["objects_8"]["families"]["q1"]["f1"] is None  # colours are not yes/no
    assert summary["eval"]["overall"]["planning_s"] == 3.0
    table = to_markdown(summary, "synthetic")
    assert "| p1 | 2 | **0.500** |" in table and "### split `objects_8`" in table


def test_f1_reads_the_answer_after_its_reason():
    replies = [("no", "obj_1 is below obj_2. no"), ("yes", "yes"), ("no", "yes")]
    episodes = [
        episode("eval", "q4", "question", e == a.rsplit(". ")[-1], expected_answer=e, answer=a)
        for e, a in replies
    ]
    q4 = summarize(episodes)["eval"]["families"]["q4"]
    assert q4["f1"] == pytest.approx((2 / 3 + 2 / 3) / 2, abs=1e-4)


def test_jobs_use_each_splits_fixed_seeds(tmp_path):
    config = EvaluateConfig(
        env=TabletopEnvConfig(),
        planner="oracle",
        tasks=["p1", "q1", "q3"],
        splits=["eval", "colour_referral"],
        episodes=2,
        videos=1,
        output_dir=str(tmp_path),
    )
    todo = jobs(config)
    evaluation = [j for j in todo if j.split == "eval"]
    assert [j.seed for j in evaluation] == [SPLITS["eval"].seed(i) for i in range(6)]
    assert [j.family for j in evaluation] == ["p1", "q1", "q3"] * 2
    referral = [j for j in todo if j.split == "colour_referral"]
    assert [j.family for j in referral] == ["p1", "q3"] * 2  # q1 asks an object's colour
    assert [j.video is not None for j in referral] == [True, False, False, False]
    assert jobs(config) == todo
    more = [j for j in jobs(replace(config, first_episode=2)) if j.split == "eval"]
    assert [j.seed for j in more] == [SPLITS["eval"].seed(i) for i in range(6, 12)]
    assert [j.family for j in more] == ["p1", "q1", "q3"] * 2, "families still take turns"
    assert [j.video is not None for j in more] == [True] + [False] * 5


def test_bad_evaluation_configs_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="first_episode=-1: must be >= 0"):
        EvaluateConfig(env=TabletopEnvConfig(), planner="oracle", first_episode=-1)
    with pytest.raises(ValueError, match="splits: 'objects_8' does not exist"):
        EvaluateConfig(env=KitchenEnvConfig(), planner="oracle", splits=["objects_8"])
    with pytest.raises(ValueError, match=r"tasks=.*allowed"):
        EvaluateConfig(env=TabletopEnvConfig(), planner="oracle", tasks=["cook"])
    with pytest.raises(ValueError, match="workers=0"):
        EvaluateConfig(env=TabletopEnvConfig(), planner="oracle", workers=0)
    with pytest.raises(ValueError, match="trained in embodied/Tabletop-v0"):
        EvaluateConfig(env=KitchenEnvConfig(), checkpoint=DEFAULT_PLANNER_CHECKPOINT)
    with pytest.raises(ValueError, match="read by planner=palme only"):
        EvaluateConfig(env=TabletopEnvConfig(), planner="oracle", recognizer=str(tmp_path))
    with pytest.raises(ValueError, match="recognition='loose': allowed"):
        EvaluateConfig(env=TabletopEnvConfig(), planner="oracle", recognition="loose")
    with pytest.raises(ValueError, match=r"no encoder\.json there"):
        EvaluateConfig(env=TabletopEnvConfig(), recognizer=str(tmp_path))


def test_a_two_episode_evaluation_in_two_workers(tmp_path):
    config = EvaluateConfig(
        env=TabletopEnvConfig(),
        tasks=["p1", "q3"],
        episodes=1,
        workers=2,
        videos=1,
        output_dir=str(tmp_path),
    )
    info = evaluate(config)
    assert [e["family"] for e in info["episodes"]] == ["p1", "q3"]
    assert info["summary"]["eval"]["overall"]["trials"] == 2
    assert all(e["planning_s"] > 0 for e in info["episodes"]), "the learned planner ran"
    for name in (EVAL_INFO, TABLE, PLOT):
        assert (tmp_path / name).stat().st_size > 0
    assert json.loads((tmp_path / EVAL_INFO).read_text())["summary"] == info["summary"]
    assert [p.name for p in (tmp_path / "videos").iterdir()] == ["eval_000.mp4"]
    again = evaluate(replace(config, workers=1, videos=0, output_dir=str(tmp_path / "again")))
    assert [e["steps"] for e in again["episodes"]] == [e["steps"] for e in info["episodes"]], (
        "the same seeds give the same episodes, in workers or not"
    )


def test_the_command_line_rejects_a_bad_split():
    result = subprocess.run(
        [sys.executable, "-m", "embodied.evaluate", "splits=[nowhere]", "planner=oracle"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "splits: 'nowhere' is unknown" in result.stderr
