"""The audio encoder: espeak-ng synthesis, log-mel features, CTC pretraining, decoding, CER."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from embodied.data.speech import VOICES, SpeechCorpus, TranscribedInstructions, collate_speech
from encoders import load_encoder, make_encoder
from encoders.audio import (
    AUDIO_LENGTHS,
    SAMPLE_RATE,
    character_error_rate,
    decode_ids,
    encode_transcript,
    log_mel,
    mel_filterbank,
    normalize_transcript,
    synthesize,
    window_mask,
    written_form,
)

TINY = {"width": 32, "layers": 1, "heads": 2, "tokens": 3, "dim": 16, "n_mels": 40}


@pytest.fixture(scope="module")
def corpus() -> SpeechCorpus:
    return SpeechCorpus(12, seed=0, n_mels=40)


def test_synthesis_speaks_in_every_voice_at_16_khz():
    for voice in VOICES:
        samples = synthesize("pick obj_3", voice, speed=160, pitch=50)
        assert samples.dtype == np.float32 and 0.3 < len(samples) / SAMPLE_RATE < 3.0, voice
        assert 0.01 < np.abs(samples).max() <= 1.0
    slow, fast = synthesize("pick obj_3", speed=120), synthesize("pick obj_3", speed=240)
    assert len(slow) > 1.4 * len(fast)


def test_log_mel_features_and_filterbank():
    filters = mel_filterbank(40)
    assert filters.shape == (201, 40) and (filters >= 0).all()
    assert (filters.sum(0) > 0).all(), "every mel band covers some frequencies"
    features = log_mel(synthesize("open the drawer"), 40)
    assert features.shape[1] == 40 and features.shape[0] > 50  # 10 ms frames
    assert abs(float(features.mean())) < 1e-4 and abs(float(features.std()) - 1) < 1e-3


def test_transcripts_round_trip_in_the_alphabet():
    assert normalize_transcript("Was pick(obj_3) successful?") == "was pick obj 3 successful"
    ids = encode_transcript("Put the can in the drawer.")
    assert decode_ids(ids) == "put the can in the drawer" and 0 not in ids


def test_a_transcript_is_written_back_as_the_tasks_write_instructions():
    for text in ("How to grasp obj_4?", "Is obj_2 below obj_10?", "Put the can in the drawer."):
        assert written_form(normalize_transcript(text)) == text
    spoken = normalize_transcript("Is it possible to first grasp obj_1, then grasp obj_3?")
    assert written_form(spoken) == "Is it possible to first grasp obj_1 then grasp obj_3?"
    assert written_form("  pick   obj 3 ") == "Pick obj_3." and written_form("") == ""


def test_transcribed_instructions_speak_transcribe_once_and_write_back():
    recognizer = make_encoder("audio", **TINY)
    spoken: list[int] = []

    def transcribe(batch):  # an untrained recognizer writes noise: script what it heard
        spoken.extend(batch[AUDIO_LENGTHS].tolist())
        return ["what colour is obj 3"] * len(batch[AUDIO_LENGTHS])

    recognizer.transcribe = transcribe  # type: ignore[method-assign]
    inputs = TranscribedInstructions(recognizer, seed=1)
    rng = np.random.default_rng(0)
    texts, arrays = inputs.prepare(["What colour is obj_3?"] * 2, [[], []], {}, rng)
    assert texts == ["What colour is obj_3?"] * 2 and arrays == {}
    assert len(spoken) == 1 and spoken[0] > 50, "one utterance of ~1 s at 100 frames/s"
    inputs.prepare(["What colour is obj_3?"], [[]], {}, rng)
    assert len(spoken) == 1, "a recording heard before is not transcribed again"
    assert inputs.recognize("What colour is obj_3?", None) == "What colour is obj_3?"
    assert len(spoken) == 1 and inputs.heard("What colour is obj_3?") == "What colour is obj_3?"
    training = TranscribedInstructions(recognizer, seed=0, variants=3)
    spoken.clear()
    training.prepare(["What colour is obj_3?"] * 12, [[]] * 12, {}, rng)
    assert len(spoken) == 3, "12 draws of 3 recordings: each transcribed once"
    assert len(set(spoken)) > 1, "in different voices or speeds"


def test_likelihoods_are_ctc_over_every_alignment_of_each_sentence(corpus):
    encoder = make_encoder("audio", **TINY).eval()  # no dropout: the two passes compare
    batch = collate_speech(corpus.features[:1], corpus.transcripts[:1])
    spoken = corpus.utterances[0].text
    with torch.no_grad():
        scores = encoder.likelihoods(batch, [spoken, "pick can", "x" * 10_000])
        mean_loss = float(encoder.pretrain_loss(batch))  # per target character
    assert float(scores[0]) == pytest.approx(-mean_loss * len(corpus.transcripts[0]), rel=1e-4)
    assert float(scores[1]) != float(scores[0])
    assert scores[2] == float("-inf"), "more characters than frames: no alignment"
    with pytest.raises(ValueError, match="scores one utterance"):
        encoder.likelihoods(collate_speech(corpus.features[:2], corpus.transcripts[:2]), [spoken])


def test_constrained_recognition_takes_the_likeliest_sentence_once():
    recognizer = make_encoder("audio", **TINY)
    asked: list[list[str]] = []

    def likelihoods(batch, texts):  # an untrained recognizer's scores are noise: script them
        asked.append(texts)
        return torch.tensor([0.0, -1.0, 5.0, -3.0])

    recognizer.likelihoods = likelihoods  # type: ignore[method-assign]
    inputs = TranscribedInstructions(recognizer, seed=1)
    phrasings = ["How to grasp obj_1?", "How to grasp obj_2?", "What colour is obj_3?", "No."]
    assert inputs.recognize("What colour is obj_3?", phrasings) == "What colour is obj_3?"
    assert inputs.recognize("What colour is obj_3?", phrasings) == "What colour is obj_3?"
    assert asked == [phrasings], "recognized once per sentence list"
    assert inputs.heard("What colour is obj_3?") == "What colour is obj_3?"
    assert inputs.heard("How to grasp obj_1?") is None


def test_character_error_rate_counts_edits():
    assert character_error_rate(["pick can"], ["pick can"]) == 0.0
    assert character_error_rate(["pick cap"], ["pick can"]) == pytest.approx(1 / 8)
    assert character_error_rate(["", "ab"], ["abcd", "ab"]) == pytest.approx(4 / 6)


def test_audio_tokens_and_a_few_ctc_steps_lower_the_loss(corpus):
    torch.manual_seed(0)
    encoder = make_encoder("audio", **TINY)
    batch = corpus.batch(8, seed=0, step=0)
    assert encoder(batch).shape == (8, 3, 16)
    optimizer = torch.optim.Adam(encoder.parameters(), lr=3e-3)
    losses = []
    for _ in range(25):
        loss = encoder.pretrain_loss(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0], losses
    assert 0.0 <= encoder.eval_metrics(batch)["cer"] <= 1.5


@pytest.mark.parametrize("pooling", ["global", "windows"])
def test_padding_does_not_change_an_utterance_tokens(corpus, pooling):
    encoder = make_encoder("audio", **TINY, pooling=pooling).eval()
    alone = collate_speech([corpus.features[0]], [corpus.transcripts[0]])
    longest = max(range(len(corpus)), key=lambda i: corpus.features[i].shape[0])
    padded = collate_speech(
        [corpus.features[0], corpus.features[longest]],
        [corpus.transcripts[0], corpus.transcripts[longest]],
    )
    with torch.no_grad():
        assert torch.allclose(encoder(alone)[0], encoder(padded)[0], atol=1e-5)
        assert encoder.transcribe(alone)[0] == encoder.transcribe(padded)[0]


def test_audio_encoder_saves_and_loads_exactly(corpus, tmp_path):
    encoder = make_encoder("audio", **TINY).eval()
    encoder.save(tmp_path)
    loaded = load_encoder(tmp_path).eval()
    batch = corpus.batch(4, seed=0, step=1)
    with torch.no_grad():
        assert torch.equal(encoder(batch), loaded(batch))


def test_windows_cut_each_utterance_into_ordered_stretches():
    lengths = torch.tensor([20, 5, 2])
    hidden = window_mask(lengths, frames=24, windows=4)  # (3, 4, 24)
    inside = ~hidden
    assert inside.any(-1).all(), "every window holds a frame"
    for b, length in enumerate(lengths.tolist()):
        assert not inside[b, :, length:].any(), "padding lies in no window"
        starts = [int(row.nonzero()[0]) for row in inside[b]]
        assert starts == sorted(starts) and starts[0] == 0
        if length >= 4:  # disjoint stretches covering the utterance
            assert (inside[b].sum(0)[:length] == 1).all()
    assert inside[0, 1].nonzero().flatten().tolist() == [5, 6, 7, 8, 9]


def test_windowed_tokens_pool_only_their_own_stretch(corpus):
    torch.manual_seed(0)
    encoder = make_encoder("audio", **TINY, pooling="windows").eval()
    batch = collate_speech([corpus.features[0]], [corpus.transcripts[0]])
    with torch.no_grad():
        tokens = encoder(batch)  # (1, 3, 16)
        frames, padding = encoder.frames(batch)  # (1, T', W), (1, T')
        length = int((~padding).sum())
        inside = ~window_mask(torch.tensor([length]), frames.shape[1], 3)[0]  # (3, T')
        for k in range(3):
            stretch = frames[:, inside[k]]  # the k-th stretch alone
            query = encoder.queries[k : k + 1][None]
            pooled, _ = encoder.pool(query, stretch, stretch)
            assert torch.allclose(tokens[0, k], encoder.project(pooled)[0, 0], atol=1e-5)
    with pytest.raises(ValueError, match=r"pooling='mean': allowed \('global', 'windows'\)"):
        make_encoder("audio", **TINY, pooling="mean")


def test_a_loaded_encoder_takes_overrides_that_shape_no_weight(corpus, tmp_path):
    encoder = make_encoder("audio", **TINY).eval()
    encoder.save(tmp_path)
    windows = load_encoder(tmp_path, pooling="windows").eval()
    assert windows.config.pooling == "windows"
    assert all(
        torch.equal(a, b)
        for a, b in zip(encoder.state_dict().values(), windows.state_dict().values(), strict=True)
    )
    with pytest.raises(ValueError, match="change the weights' shapes"):
        load_encoder(tmp_path, width=64)


def test_a_frozen_backbone_keeps_its_weights_and_its_dropout_off_while_the_queries_learn(corpus):
    torch.manual_seed(0)
    encoder = make_encoder("audio", **TINY).freeze_backbone().train()
    batch = corpus.batch(4, seed=0, step=2)
    assert not encoder.transformer.training, "train() leaves the frozen backbone in eval mode"
    assert encoder.training and encoder.pool.training
    first, _ = encoder.frames(batch)
    again, _ = encoder.frames(batch)
    assert torch.equal(first, again), "no dropout in the frozen speech encoder"
    before = {n: p.detach().clone() for n, p in encoder.named_parameters()}
    optimizer = torch.optim.Adam([p for p in encoder.parameters() if p.requires_grad], lr=1e-2)
    encoder(batch).pow(2).mean().backward()
    optimizer.step()
    changed = {n for n, p in encoder.named_parameters() if not torch.equal(p, before[n])}
    assert changed == {
        "queries",
        "pool.in_proj_weight",
        "pool.in_proj_bias",
        "pool.out_proj.weight",
        "pool.out_proj.bias",
        "project.weight",
        "project.bias",
    }, changed
