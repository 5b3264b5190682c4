"""``audio``: spoken instructions as a few tokens (SALMONN-style: an audio encoder whose frame
features are pooled by learned queries into tokens for the language model; ``pooling=windows``
gives each query its own stretch of the utterance, in order, as SALMONN's window-level
Q-Former does).

Speech is synthesized offline with espeak-ng (``synthesize``: voice, speed, pitch), noised, and
turned into log-mel features with ``torch.stft`` and a mel filterbank built here (torchaudio does
not work with this torch build). The encoder is a convolutional front end (4x subsampling) and a
transformer; pretraining is CTC on the spoken text's characters (``pretrain_loss``), and
``transcribe`` decodes greedily, from which ``eval_metrics`` reports the character error rate;
``likelihoods`` scores given sentences instead (constrained recognition).
"""

from __future__ import annotations

import io
import math
import re
import shutil
import subprocess
import wave
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from encoders.base import Batch, EncoderConfig, SensorEncoder, register

SAMPLE_RATE = 16_000
N_FFT, HOP = 400, 160  # 25 ms windows every 10 ms
ALPHABET = " abcdefghijklmnopqrstuvwxyz0123456789'"
"""CTC output characters; index 0 is the blank, character i is index i + 1."""
AUDIO_FEATURES = "audio_features"
"""Batch key: (B, T, n_mels) float32 log-mel frames, zero-padded."""
AUDIO_LENGTHS = "audio_lengths"
"""Batch key: (B,) int64 frames of each utterance."""
TRANSCRIPT = "transcript"
"""Batch key, pretraining: (B, L) int64 character ids (ALPHABET index + 1), zero-padded."""
TRANSCRIPT_LENGTHS = "transcript_lengths"


def normalize_transcript(text: str) -> str:
    """What the speech says, in ALPHABET: lower case, ``obj_3`` -> ``obj 3``, no punctuation."""
    text = text.lower().replace("_", " ")
    kept = "".join(c if c in ALPHABET else " " for c in text)
    return " ".join(kept.split())


QUESTION_WORDS = ("how", "what", "which", "where", "is", "are", "was", "were", "can", "does", "do")
"""First words that make a transcript a question in ``written_form``."""


def written_form(transcript: str) -> str:
    """A transcript written back the way the tasks write instructions, as far as speech tells:
    ``obj 3`` -> ``obj_3``, a capital first letter, ``?`` after a question and ``.`` after the
    rest. Commas are not restored (``normalize_transcript``'s output has none to go by)."""
    text = re.sub(r"\bobj (\d+)\b", r"obj_\1", " ".join(transcript.split()))
    if not text:
        return text
    words = text.split()
    end = "?" if words[0] in QUESTION_WORDS else "."
    return text[0].upper() + text[1:] + end


def encode_transcript(text: str) -> list[int]:
    return [ALPHABET.index(c) + 1 for c in normalize_transcript(text)]


def decode_ids(ids: list[int]) -> str:
    return "".join(ALPHABET[i - 1] for i in ids if i > 0)


def synthesize(text: str, voice: str = "en-us", speed: int = 160, pitch: int = 50) -> np.ndarray:
    """``text`` spoken by espeak-ng: float32 samples in [-1, 1] at SAMPLE_RATE."""
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng is not installed: run ./setup.sh (it installs espeak-ng)")
    spoken = text.replace("_", " ")  # "obj_3" is read "obj three"
    result = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", spoken],
        capture_output=True,
        check=True,
    )
    with wave.open(io.BytesIO(result.stdout)) as reader:
        rate = reader.getframerate()
        frames = reader.readframes(reader.getnframes())  # espeak's header overstates the count
    samples = np.frombuffer(frames, dtype=np.int16).astype(np.float32) / 32768.0
    duration = len(samples) / rate
    target = np.arange(int(duration * SAMPLE_RATE)) / SAMPLE_RATE  # resample by interpolation
    return np.interp(target, np.arange(len(samples)) / rate, samples).astype(np.float32)


def mel_filterbank(n_mels: int, n_fft: int = N_FFT, rate: int = SAMPLE_RATE) -> Tensor:
    """``(n_fft // 2 + 1, n_mels)`` triangular filters, evenly spaced on the HTK mel scale."""

    def mel(hz: np.ndarray) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + hz / 700.0)

    def hz(m: np.ndarray) -> np.ndarray:
        return 700.0 * (10 ** (m / 2595.0) - 1.0)

    edges = hz(np.linspace(mel(np.array(0.0)), mel(np.array(rate / 2)), n_mels + 2))
    bins = np.linspace(0, rate / 2, n_fft // 2 + 1)
    low, centre, high = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins[None] - low) / (centre - low)
    falling = (high - bins[None]) / (high - centre)
    filters = np.clip(np.minimum(rising, falling), 0.0, None)  # (n_mels, F)
    return torch.from_numpy(filters.T.astype(np.float32))


def log_mel(samples: np.ndarray, n_mels: int = 80) -> Tensor:
    """``(S,)`` samples -> ``(T, n_mels)`` log-mel frames (10 ms hop), per-utterance normalized."""
    audio = torch.from_numpy(samples)
    spectrum = torch.stft(
        audio, N_FFT, HOP, window=torch.hann_window(N_FFT), return_complex=True
    )  # (F, T)
    power = spectrum.abs().pow(2).T  # (T, F)
    features = torch.log(power @ mel_filterbank(n_mels) + 1e-6)  # (T, n_mels)
    return (features - features.mean()) / features.std().clamp(min=1e-5)


POOLINGS = ("global", "windows")


def window_mask(lengths: Tensor, frames: int, windows: int) -> Tensor:
    """``(B, windows, frames)`` True where frame t lies outside window k of its utterance: the
    ``lengths[b]`` frames cut into ``windows`` equal stretches (each at least one frame; the
    padding after ``lengths[b]`` in none)."""
    t = torch.arange(frames, device=lengths.device)  # (T,)
    k = torch.arange(windows, device=lengths.device)  # (K,)
    length = lengths[:, None].clamp(min=1)  # (B, 1)
    start = k[None] * length // windows  # (B, K)
    end = torch.maximum((k[None] + 1) * length // windows, start + 1).clamp(max=length)
    inside = (t[None, None] >= start[..., None]) & (t[None, None] < end[..., None])  # (B,K,T)
    return ~inside


@dataclass
class AudioConfig(EncoderConfig):
    n_mels: int = 80
    width: int = 144
    layers: int = 4
    heads: int = 4
    tokens: int = 8
    """Tokens per utterance handed to the language model."""
    pooling: str = "global"
    """How the ``tokens`` queries pool the encoded frames: ``global`` (each query attends to
    the whole utterance) or ``windows`` (query k to the k-th of ``tokens`` equal stretches of
    the utterance, so the tokens keep the words' order, as SALMONN's window-level Q-Former).
    Both have the same parameters."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.width % self.heads:
            raise ValueError(f"width={self.width} must be a multiple of heads={self.heads}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling={self.pooling!r}: allowed {POOLINGS}")
        self.check_positive("n_mels", "layers", "tokens")


def sinusoids(length: int, width: int) -> Tensor:
    """``(length, width)`` fixed sinusoidal position codes."""
    position = torch.arange(length).unsqueeze(1)
    rates = torch.exp(torch.arange(0, width, 2) * (-math.log(10_000.0) / width))
    codes = torch.zeros(length, width)
    codes[:, 0::2] = torch.sin(position * rates)
    codes[:, 1::2] = torch.cos(position * rates)
    return codes


@register
class AudioEncoder(SensorEncoder):
    """``audio_features (B, T, n_mels)`` -> ``(B, tokens, dim)``."""

    name = "audio"
    inputs = (AUDIO_FEATURES, AUDIO_LENGTHS)
    config_class = AudioConfig

    def __init__(self, config: AudioConfig) -> None:
        super().__init__(config)
        self.config: AudioConfig
        w = config.width
        self.frontend = nn.Sequential(
            nn.Conv1d(config.n_mels, w, 3, stride=2, padding=1),
            nn.GELU(),
            nn.Conv1d(w, w, 3, stride=2, padding=1),
            nn.GELU(),
        )
        layer = nn.TransformerEncoderLayer(
            w, config.heads, 4 * w, dropout=0.1, batch_first=True, norm_first=True
        )
        self.transformer = nn.TransformerEncoder(layer, config.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(w)
        self.ctc_head = nn.Linear(w, len(ALPHABET) + 1)
        self.queries = nn.Parameter(torch.randn(config.tokens, w) * 0.02)
        self.pool = nn.MultiheadAttention(w, config.heads, batch_first=True)
        self.project = nn.Linear(w, config.dim)

    @property
    def n_tokens(self) -> int:
        return self.config.tokens

    def backbone_parts(self) -> list[nn.Module]:
        """The CTC-pretrained speech encoder; the queries that pool it and the projection are
        the rest (SALMONN trains its Q-Former over a frozen Whisper encoder)."""
        return [self.frontend, self.transformer, self.norm, self.ctc_head]

    def frames(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """``(B, T', width)`` encoded frames (T' = ceil(T / 4)) and their ``(B, T')`` padding."""
        features = batch[AUDIO_FEATURES].float()  # (B, T, M)
        x = self.frontend(features.transpose(1, 2)).transpose(1, 2)  # (B, T', W)
        lengths = (batch[AUDIO_LENGTHS] + 3) // 4  # frames left after two stride-2 convs
        padding = torch.arange(x.shape[1], device=x.device)[None] >= lengths[:, None]  # (B, T')
        x = x + sinusoids(x.shape[1], x.shape[2]).to(x.device)
        return self.norm(self.transformer(x, src_key_padding_mask=padding)), padding

    def forward(self, batch: Batch) -> Tensor:
        x, padding = self.frames(batch)  # (B, T', W)
        queries = self.queries.expand(x.shape[0], -1, -1)  # (B, K, W)
        if self.config.pooling == "windows":
            lengths = (~padding).sum(-1)  # (B,) frames of each utterance
            hidden = window_mask(lengths, x.shape[1], self.config.tokens)
            hidden = hidden.repeat_interleave(self.config.heads, dim=0)  # (B*heads, K, T')
            pooled, _ = self.pool(queries, x, x, attn_mask=hidden)  # (B, K, W)
        else:
            pooled, _ = self.pool(queries, x, x, key_padding_mask=padding)  # (B, K, W)
        return self.project(pooled)  # (B, K, D)

    def pretrain_loss(self, batch: Batch) -> Tensor:
        """CTC between the frames' character distributions and the spoken text."""
        x, padding = self.frames(batch)
        log_probs = self.ctc_head(x).log_softmax(-1).transpose(0, 1)  # (T', B, C)
        return F.ctc_loss(
            log_probs,
            batch[TRANSCRIPT],
            (~padding).sum(-1),
            batch[TRANSCRIPT_LENGTHS],
            blank=0,
            zero_infinity=True,
        )

    def transcribe(self, batch: Batch) -> list[str]:
        """Greedy CTC decoding: the best character per frame, repeats merged, blanks dropped."""
        x, padding = self.frames(batch)
        best = self.ctc_head(x).argmax(-1)  # (B, T')
        texts = []
        for row, pad in zip(best.tolist(), padding.tolist(), strict=True):
            ids = [c for i, (c, p) in enumerate(zip(row, pad, strict=True)) if not p]
            merged = [c for i, c in enumerate(ids) if i == 0 or c != ids[i - 1]]
            texts.append(decode_ids(merged))
        return texts

    def likelihoods(self, batch: Batch, texts: list[str]) -> Tensor:
        """``(K,)`` log-likelihoods of ``texts`` (as ``normalize_transcript`` spells them) for
        the one utterance in ``batch``: CTC's sum over every alignment of each text to the
        frames; -inf for a text too long for them."""
        x, padding = self.frames(batch)
        if x.shape[0] != 1:
            raise ValueError(f"likelihoods scores one utterance; the batch holds {x.shape[0]}")
        log_probs = self.ctc_head(x[:, ~padding[0]]).log_softmax(-1)  # (1, T', C)
        targets = [torch.tensor(encode_transcript(t), dtype=torch.long) for t in texts]
        padded = nn.utils.rnn.pad_sequence(targets, batch_first=True)  # (K, L)
        k = len(texts)
        nll = F.ctc_loss(
            log_probs.transpose(0, 1).expand(-1, k, -1),  # (T', K, C)
            padded,
            torch.full((k,), log_probs.shape[1], dtype=torch.long),
            torch.tensor([len(t) for t in targets]),
            blank=0,
            reduction="none",
        )  # (K,), inf where no alignment exists
        return -nll

    @torch.no_grad()
    def eval_metrics(self, batch: Batch) -> dict[str, float]:
        references = [
            decode_ids(row[:length].tolist())
            for row, length in zip(batch[TRANSCRIPT], batch[TRANSCRIPT_LENGTHS], strict=True)
        ]
        return {"cer": character_error_rate(self.transcribe(batch), references)}


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions)."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def character_error_rate(hypotheses: list[str], references: list[str]) -> float:
    """Total edit distance over total reference length."""
    errors = sum(edit_distance(h, r) for h, r in zip(hypotheses, references, strict=True))
    return errors / max(1, sum(len(r) for r in references))
