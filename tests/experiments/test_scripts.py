"""Each experiment script runs end to end on a tiny budget and writes JSON plus markdown."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from embodied.config import DEFAULT_PLANNER_CHECKPOINT

ROOT = Path(__file__).resolve().parents[2]


def run_script(module: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, "--quick", "--output-dir", str(tmp_path), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_benchmark_env_smoke(tmp_path):
    run = run_script("experiments.benchmark_env", tmp_path)
    assert run.returncode == 0, run.stderr
    results = json.loads((tmp_path / "benchmark_env.json").read_text())
    assert {(r["views"], r["image_size"]) for r in results["speed"]} == {
        (1, 64),
        (1, 96),
        (3, 64),
        (3, 96),
    }
    for row in results["speed"]:
        assert row["env_steps_per_s"] > 0 and row["bare_steps_per_s"] > 0
    assert results["skills"]["pick"]["calls"] >= 1
    assert "| pick |" in (tmp_path / "benchmark_env.md").read_text()


def test_oracle_success_smoke(tmp_path):
    run = run_script("experiments.oracle_success", tmp_path, "--families", "p1", "q3")
    assert run.returncode == 0, run.stderr
    results = json.loads((tmp_path / "oracle_success.json").read_text())
    assert set(results["families"]) == {"p1", "q3"}
    assert results["families"]["p1"]["success_rate"] == 1.0


def test_failure_lists_collapse_repeated_steps_and_reasons():
    from experiments.oracle_success import collapse_repeats

    steps = ["open(drawer)", "pick(cup)", "pick(cup)", "pick(cup)", "done()", "pick(cup)"]
    assert collapse_repeats(steps) == "open(drawer); pick(cup) x3; done(); pick(cup)"
    assert collapse_repeats([]) == ""
    assert collapse_repeats(["a", "b", "b", "c", "d"], limit=2) == "a; b x2; 2 more in the JSON"


def test_benchmark_kitchen_smoke(tmp_path):
    run = run_script("experiments.benchmark_kitchen", tmp_path)
    assert run.returncode == 0, run.stderr
    results = json.loads((tmp_path / "benchmark_kitchen.json").read_text())
    assert {row["views"] for row in results["speed"]} == {1, 3}
    assert all(row["env_steps_per_s"] > 0 for row in results["speed"])
    skills = results["skills"].items()
    calls = {kind: entry["calls"] for kind, entry in skills if isinstance(entry, dict)}
    assert min(calls.values()) >= 1, calls  # every kind tried: the chains reach each of them
    assert "| open_cabinet | " in (tmp_path / "benchmark_kitchen.md").read_text()


def test_oracle_success_runs_the_kitchen(tmp_path):
    args = ("--env", "kitchen", "--families", "put_in_drawer", "affordance")
    run = run_script("experiments.oracle_success", tmp_path, *args)
    assert run.returncode == 0, run.stderr
    results = json.loads((tmp_path / "oracle_success_kitchen.json").read_text())
    assert set(results["families"]) == {"put_in_drawer", "affordance"}
    assert results["families"]["put_in_drawer"]["success_rate"] == 1.0


@pytest.mark.parametrize(
    ("module", "args", "message"),
    [
        ("experiments.oracle_success", ["--families", "p7"], "--families ['p7']: allowed ['p1'"),
        ("experiments.oracle_success", ["--num-objects", "12"], "allowed 1..8"),
        ("experiments.oracle_success", ["--env", "kitchen", "--num-objects", "3"], "allowed 4..6"),
        ("experiments.benchmark_kitchen", ["--failure-rate", "2"], "must be in [0, 1]"),
    ],
)
def test_scripts_reject_bad_arguments(tmp_path, module, args, message):
    run = run_script(module, tmp_path, *args)
    assert run.returncode == 2 and message in run.stderr


def test_benchmark_generate_smoke(tmp_path):
    run = run_script("experiments.benchmark_generate", tmp_path)
    assert run.returncode == 0, run.stderr
    results = json.loads((tmp_path / "benchmark_generate.json").read_text())
    rows = {(r["world"], r["workers"]): r for r in results["rows"]}
    assert set(rows) == {("tabletop", 1), ("tabletop", 2), ("kitchen", 1), ("kitchen", 2)}
    for (world, _), row in rows.items():
        assert row["episodes"] == 4 and row["scenes_per_s"] > 0
        assert row["mb_per_1000_episodes"] > 0
        # The same plan both times: the same frames and bytes.
        assert row["frames"] == rows[(world, 1)]["frames"]
        assert row["mb_per_1000_episodes"] == rows[(world, 1)]["mb_per_1000_episodes"]
    assert set(results["speedup_2_workers"]) == {"tabletop", "kitchen"}
    assert "| tabletop | 2 |" in (tmp_path / "benchmark_generate.md").read_text()


def test_pretrain_encoders_smoke(tmp_path):
    from embodied.config import GenerateConfig, TabletopEnvConfig
    from embodied.generate import generate

    data = tmp_path / "data"
    generate(
        GenerateConfig(
            env=TabletopEnvConfig(),
            tasks=["q1"],
            episodes=6,
            eval_episodes=3,
            shard_size=3,
            workers=1,
            output_dir=str(data),
            progress=False,
        )
    )
    run = run_script(
        "experiments.pretrain_encoders", tmp_path, "--data", str(data), "--runs", str(tmp_path)
    )
    assert run.returncode == 0, run.stderr
    rows = json.loads((tmp_path / "pretrain_encoders.json").read_text())["rows"]
    assert [r["encoder"] for r in rows] == ["vit", "object_centric", "region", "osrt", "audio"]
    for row in rows:
        assert row["metrics"]["step"] == 4 and row["metrics"]["eval_loss"] > 0
    measures = {r["encoder"]: set(r["metrics"]) for r in rows}
    assert {"psnr", "fg_ari"} <= measures["osrt"] and "cer" in measures["audio"]
    assert f"| osrt | {data} | 4 |" in (tmp_path / "pretrain_encoders.md").read_text()

    # Tabulating one encoder again re-reads its run and keeps the other encoders' rows.
    table = tmp_path / "pretrain_encoders.json"
    results = json.loads(table.read_text())
    for row in results["rows"]:
        row["metrics"]["step"] = -1
    del results["rows"][0]["commit"]  # as the rows written before rows had commits and data
    del results["rows"][0]["data"]
    results["machine"]["commit"] = "earlier"
    table.write_text(json.dumps(results))
    run = run_script(
        "experiments.pretrain_encoders",
        tmp_path,
        "--collect",
        "--encoders",
        "audio",
        "--runs",
        str(tmp_path),
    )
    assert run.returncode == 0, run.stderr
    rows = json.loads(table.read_text())["rows"]
    assert [r["encoder"] for r in rows] == ["vit", "object_centric", "region", "osrt", "audio"]
    assert [r["metrics"]["step"] for r in rows] == [-1, -1, -1, -1, 4]
    assert rows[0]["commit"] == "earlier", "an old row keeps its table's commit"
    assert rows[0]["data"] == "data/tabletop", "and the data of those tables"
    assert "| earlier |" in (tmp_path / "pretrain_encoders.md").read_text()

    # Measuring a final encoder again on more held-out batches records how many examples.
    run = run_script(
        "experiments.pretrain_encoders",
        tmp_path,
        "--collect",
        "--encoders",
        "osrt",
        "--data",
        str(data),
        "--eval-batches",
        "2",
        "--runs",
        str(tmp_path),
    )
    assert run.returncode == 0, run.stderr
    row = json.loads(table.read_text())["rows"][3]
    assert row["encoder"] == "osrt" and row["held_out_examples"] == 64
    assert row["metrics"]["psnr"] > 0 and "fg_ari" in row["metrics"]
    assert "on 64 held-out examples" in (tmp_path / "pretrain_encoders.md").read_text()


def test_train_default_planner_and_benchmark_planner_smoke(tmp_path):
    checkpoint = tmp_path / "checkpoint"
    paths = ["--data", str(tmp_path / "data"), "--run", str(tmp_path / "run")]
    paths += ["--checkpoint", str(checkpoint)]
    run = run_script("experiments.train_default_planner", tmp_path, *paths)
    assert run.returncode == 0, run.stderr
    results = json.loads((tmp_path / "default_planner.json").read_text())
    assert [e["decoding"] for e in results["evaluations"]] == ["free", "constrained"]
    assert all(e["episodes"] == 6 for e in results["evaluations"])  # one of each family
    assert results["evaluations"][1]["parse_failures"] == 0, "constrained steps always parse"
    assert (checkpoint / "palme.json").exists() and results["checkpoint_mb"] > 0
    tuned = json.loads((tmp_path / "run" / "final" / "train_config.json").read_text())
    first_stage = tmp_path / "run_first_stage"
    assert tuned["init_checkpoint"] == str(first_stage / "final"), "trained on from stage one"
    assert tuned["spread_rows"] == 0.5
    again = run_script("experiments.train_default_planner", tmp_path, "--evaluate-only", *paths)
    assert again.returncode == 0, again.stderr
    seconds = round(
        sum(
            json.loads((stage / "metrics.jsonl").read_text().splitlines()[-1])["elapsed_s"]
            for stage in (tmp_path / "run", first_stage)
        )
    )
    reread = json.loads((tmp_path / "default_planner.json").read_text())
    assert reread["training"]["seconds"] == seconds, "both stages' own clocks"
    assert f"; {seconds} s." in (tmp_path / "default_planner.md").read_text()
    bench = run_script(
        "experiments.benchmark_planner",
        tmp_path,
        "--checkpoint",
        str(checkpoint),
        "--data",
        str(tmp_path / "data"),
    )
    assert bench.returncode == 0, bench.stderr
    measured = json.loads((tmp_path / "benchmark_planner.json").read_text())
    assert measured["training"]["full_tokens_per_s"] > 0
    assert measured["training"]["bare_lm_tokens_per_s"] > 0
    assert measured["planning"]["latency_ms_median"] > 0
    assert 0 < measured["planning"]["planning_share_of_wall_time"] < 1
    assert "injection overhead" in (tmp_path / "benchmark_planner.md").read_text()


def test_osrt_views_smoke(tmp_path):
    args = ["--runs", str(tmp_path), "--data", str(tmp_path / "data")]
    run = run_script("experiments.osrt_views", tmp_path, *args)
    assert run.returncode == 0, run.stderr
    results = json.loads((tmp_path / "osrt_views_quick.json").read_text())
    assert [row["views"] for row in results["rows"]] == ["default", "zoom"]
    for row in results["rows"]:
        assert 0.0 <= row["metrics"][-1]["fg_ari"] <= 1.0 and row["metrics"][-1]["psnr"] > 0
    assert "| zoom | 2 |" in (tmp_path / "osrt_views_quick.md").read_text()


def test_palme_studies_smoke(tmp_path):
    run = run_script(
        "experiments.palme_studies",
        tmp_path,
        "--study",
        "entity_referrals",
        "--runs",
        str(tmp_path),
    )
    assert run.returncode == 0, run.stderr
    results = json.loads((tmp_path / "study_entity_referrals_quick.json").read_text())
    rows = {row["variant"]: row for row in results["rows"]}
    assert set(rows) == {
        "state_entity_referrals",
        "state_no_entity_referrals",
        "state_relabelled_entities",
        "state_relabelled_entities_shipped_recipe",
        "state_spread_rows_shipped_recipe",
        "state_spread_rows_fine_tuned",
        "state_spread_rows_fine_tuned_lr_1e-4",
    }
    spread = {
        "state_relabelled_entities": 0.0,
        "state_relabelled_entities_shipped_recipe": 0.0,
        "state_spread_rows_shipped_recipe": 1.0,
        "state_spread_rows_fine_tuned": 0.5,
        "state_spread_rows_fine_tuned_lr_1e-4": 0.5,
    }
    for name, share in spread.items():
        config = json.loads(
            (tmp_path / f"quick_{name}" / "final" / "train_config.json").read_text()
        )
        assert config["relabel_entities"] is True
        assert config["spread_rows"] == share
        fine_tuned = name.startswith("state_spread_rows_fine_tuned")
        parent = str(tmp_path / "quick_state_relabelled_entities_shipped_recipe" / "final")
        assert config["init_checkpoint"] == (parent if fine_tuned else None)
    trained = json.loads(
        (tmp_path / "quick_state_no_entity_referrals" / "final" / "palme.json").read_text()
    )
    assert trained["entity_prefix"] is False
    for row in rows.values():
        overall = row["evaluation"]["eval"]["overall"]
        assert overall["trials"] == 6  # one episode of each default family
        assert 0.0 <= overall["ci95"][0] <= overall["rate"] <= overall["ci95"][1] <= 1.0
    assert not (ROOT / "runs" / "quick_state_entity_referrals").exists(), "stays in --runs"
    table = (tmp_path / "study_entity_referrals_quick.md").read_text()
    assert "| state_no_entity_referrals | **" in table
    assert (tmp_path / "study_entity_referrals_quick.png").stat().st_size > 0
    again = run_script(
        "experiments.palme_studies",
        tmp_path,
        "--study",
        "entity_referrals",
        "--variants",
        "state_entity_referrals",
        "--runs",
        str(tmp_path),
    )
    assert again.returncode == 0, again.stderr
    rerun = json.loads((tmp_path / "study_entity_referrals_quick.json").read_text())
    assert [row["variant"] for row in rerun["rows"]] == [
        "state_entity_referrals",
        "state_no_entity_referrals",
        "state_relabelled_entities",
        "state_relabelled_entities_shipped_recipe",
        "state_spread_rows_shipped_recipe",
        "state_spread_rows_fine_tuned",
        "state_spread_rows_fine_tuned_lr_1e-4",
    ], "rerunning one variant keeps the others' rows"
    assert rerun["rows"][1] == rows["state_no_entity_referrals"]
    assert "trained_earlier" not in rows["state_entity_referrals"]
    evaluated_again = rerun["rows"][0]
    assert evaluated_again["trained_earlier"] is True, "its training time is its log's"
    assert evaluated_again["train_s"] == round(evaluated_again["train_metrics"]["elapsed_s"])
    retable = (tmp_path / "study_entity_referrals_quick.md").read_text()
    assert "state_entity_referrals (trained earlier: " in retable


def test_a_fine_tuning_variant_needs_its_parent_trained_first(tmp_path):
    from experiments.palme_studies import STUDIES, train_config

    variant = next(v for v in STUDIES["entity_referrals"][1] if v.fine_tunes is not None)
    data = {"blocked_pick_mistakes": "unused", "full": "unused"}
    with pytest.raises(SystemExit, match=f"run its study with --variants {variant.fine_tunes}"):
        train_config(variant, data, tmp_path, quick=True)


def test_palme_studies_instruction_sensors_smoke(tmp_path):
    variants = ["state_spoken_frozen_windows", "state_region_referrals"]
    args = ["--study", "instruction_sensors", "--variants", *variants, "--runs", str(tmp_path)]
    run = run_script("experiments.palme_studies", tmp_path, *args)
    assert run.returncode == 0, run.stderr
    for variant, sensor in zip(variants, ["audio", "region"], strict=True):
        trained = tmp_path / f"quick_{variant}" / "final"
        model = json.loads((trained / "palme.json").read_text())
        assert model["instruction_sensor"] == sensor
        assert model["freeze_instruction_backbone"] is (sensor == "audio")
        assert (trained / "instruction_encoder" / "model.safetensors").exists()
    heard = json.loads(
        (
            tmp_path
            / "quick_state_spoken_frozen_windows"
            / "final"
            / "instruction_encoder"
            / "encoder.json"
        ).read_text()
    )
    assert heard["config"]["pooling"] == "windows"
    results = json.loads((tmp_path / "study_instruction_sensors_quick.json").read_text())
    assert [row["variant"] for row in results["rows"]] == variants
    for row in results["rows"]:
        assert row["evaluation"]["eval"]["overall"]["trials"] == 6


def test_palme_studies_osrt_planner_trains_and_runs_on_the_zoomed_views(tmp_path):
    from experiments.palme_studies import CORPORA, ZOOM_VIEWS, ensure_data

    args = ["--study", "representations", "--variants", "osrt_1pct", "--runs", str(tmp_path)]
    run = run_script("experiments.palme_studies", tmp_path, *args)
    assert run.returncode == 0, run.stderr
    data = tmp_path / "quick_data_1pct_zoom"
    made_with = json.loads((data / "manifest.json").read_text())["generator"]["env"]
    assert made_with["views"] == list(ZOOM_VIEWS)
    trained = tmp_path / "quick_osrt_1pct" / "final"
    assert json.loads((trained / "train_config.json").read_text())["data"] == str(data)
    names = json.loads((trained / "palme.json").read_text())["entity_names"]
    assert names == "colour", "an image planner names cubes by what the image shows"
    table = (tmp_path / "study_representations_quick.md").read_text()
    assert re.search(r"\| osrt_1pct \|.*\] † \|", table), "its q1 is marked as self-answered"
    assert "† q1 of a planner that names cubes by colour" in table
    evaluated = json.loads(
        (tmp_path / "quick_osrt_1pct" / "evaluation_osrt_1pct" / "eval_info.json").read_text()
    )
    assert evaluated["config"]["env"]["views"] == list(ZOOM_VIEWS), "evaluated as trained"
    with pytest.raises(SystemExit, match=re.escape("generated with env.views=['front_zoom'")):
        ensure_data(str(data), CORPORA["1pct"], quick=True)


def test_palme_studies_reject_an_unknown_variant(tmp_path):
    run = run_script(
        "experiments.palme_studies", tmp_path, "--study", "frozen_lm", "--variants", "x"
    )
    assert run.returncode != 0 and "--variants ['x']: study frozen_lm has" in run.stderr


def test_palme_studies_merge_keeps_known_variants_of_the_same_measurement(tmp_path):
    from experiments.palme_studies import merged_rows

    earlier = tmp_path / "study.json"
    old_rows = [
        {"variant": v} for v in ("state_relabelled_entities", "retired", "state_entity_referrals")
    ]
    earlier.write_text(json.dumps({"splits": ["eval"], "episodes": 2, "rows": old_rows}))
    new = [{"variant": "state_entity_referrals", "fresh": True}]
    merged = merged_rows("entity_referrals", new, earlier, ["eval"], 2)
    assert merged == [new[0], {"variant": "state_relabelled_entities"}], "study order, no stale row"
    assert merged_rows("entity_referrals", new, earlier, ["eval"], 3) == new, "other episodes"


def test_palme_studies_write_the_failure_rate_of_a_corpus_and_refuse_a_mismatch(tmp_path):
    from experiments.palme_studies import CORPORA, ensure_data

    path = str(tmp_path / "failures")
    ensure_data(path, CORPORA["failures"], quick=True)
    manifest = json.loads((tmp_path / "failures" / "manifest.json").read_text())
    assert manifest["generator"]["env"]["failure_rate"] == 0.1
    with pytest.raises(
        SystemExit, match=re.escape("generated with env.failure_rate=0.1; this corpus needs 0.0")
    ):
        ensure_data(path, CORPORA["full"], quick=True)
    mistakes = str(tmp_path / "mistakes")
    ensure_data(mistakes, CORPORA["mistakes"], quick=True)
    manifest = json.loads((tmp_path / "mistakes" / "manifest.json").read_text())
    assert manifest["generator"]["mistake_rate"] == 0.1
    with pytest.raises(SystemExit, match=re.escape("with mistake_rate=0.1; this corpus needs 0.0")):
        ensure_data(mistakes, CORPORA["full"], quick=True)
    with pytest.raises(
        SystemExit, match=re.escape("with mistake_picks=any; this corpus needs blocked")
    ):
        ensure_data(mistakes, CORPORA["blocked_pick_mistakes"], quick=True)


def test_every_study_has_its_section_in_results_md():
    from experiments import palme_studies, update_readme

    sections = {name for name, _, _ in update_readme.STUDIES}
    missing = [s for s in palme_studies.STUDIES if f"study_{s}" not in sections]
    assert not missing, f"experiments/update_readme.STUDIES lacks {missing}"
    for name, command, _ in update_readme.STUDIES:
        if name.startswith("study_"):
            assert f"--study {name.removeprefix('study_')}" in command


def test_results_of_a_run_that_outlived_its_commit_name_both(tmp_path):
    from experiments.common import machine, write_results

    now = machine()
    write_results("same", {"machine": now}, "same", tmp_path)
    assert json.loads((tmp_path / "same.json").read_text())["machine"] == now
    started = {**now, "commit": "0000000"}
    write_results("outlived", {"machine": started}, "outlived", tmp_path)
    written = json.loads((tmp_path / "outlived.json").read_text())["machine"]
    assert written["commit"] == "0000000" and written["commit_at_end"] == now["commit"]


@pytest.mark.parametrize(
    ("name", "command"),
    [
        ("object_centric_frozen_full", "--encoders object_centric"),
        ("vit_1pct", "--encoders vit"),
        ("osrt_full", "--encoders osrt_rgbd_slot_mixer"),
    ],
)
def test_palme_studies_refuse_an_image_encoder_that_was_never_pretrained(tmp_path, name, command):
    """A variant whose encoder would start from scratch is an error naming the command that
    pretrains it, not a row that silently compares a fresh encoder with pretrained ones."""
    from experiments.palme_studies import CORPORA, STUDIES, train_config

    variant = next(v for v in STUDIES["representations"][1] if v.name == name)
    data = {corpus: str(tmp_path / corpus) for corpus in CORPORA}
    with pytest.raises(SystemExit, match=rf"{name} starts its .* which is missing: .*{command} "):
        train_config(variant, data, tmp_path, quick=False)


def test_palme_studies_refuse_a_finished_run_that_names_cubes_otherwise(tmp_path):
    from experiments.palme_studies import STUDIES, run_variant

    variant = next(v for v in STUDIES["representations"][1] if v.name == "vit_1pct")
    final = tmp_path / "study_vit_1pct" / "final"
    final.mkdir(parents=True)
    (final / "palme.json").write_text(json.dumps({"entity_names": "label"}))
    variant = replace(variant, run=str(final.parent))
    with pytest.raises(SystemExit, match=r"names cubes by label, vit_1pct by colour: move the run"):
        run_variant(variant, ["eval"], 1, {}, tmp_path, quick=False)


def test_support_probe_smoke(tmp_path):
    run = run_script(
        "experiments.support_probe", tmp_path, "--checkpoint", DEFAULT_PLANNER_CHECKPOINT
    )
    assert run.returncode == 0, run.stderr
    (row,) = json.loads((tmp_path / "support_probe.json").read_text())["rows"]
    asked = [a for kind in row["by_objects"].values() for _, a in kind.values()]
    right = [r for kind in row["by_objects"].values() for r, _ in kind.values()]
    assert sum(asked) >= 9, "every cube of 3 scenes of 3-5 cubes"
    assert all(0 <= r <= a for r, a in zip(right, asked, strict=True))
    assert len(row["misread"]) == sum(asked) - sum(right)
    assert "| covered |" in (tmp_path / "support_probe.md").read_text()
