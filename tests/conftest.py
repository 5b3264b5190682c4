"""Shared fixtures: envs are closed after each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import gymnasium as gym
import pytest

import envs  # noqa: F401  (registers the environments)

TABLETOP = "embodied/Tabletop-v0"


@pytest.fixture
def make_env() -> Iterator[Callable[..., gym.Env[Any, Any]]]:
    made: list[gym.Env[Any, Any]] = []

    def factory(**kwargs: Any) -> gym.Env[Any, Any]:
        env = gym.make(TABLETOP, **kwargs)
        made.append(env)
        return env

    yield factory
    for env in made:
        env.close()
