"""Shared fixtures: envs are closed after each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import gymnasium as gym
import pytest

import envs  # noqa: F401  (registers the environments)

TABLETOP = "embodied/Tabletop-v0"
KITCHEN = "embodied/Kitchen-v0"


def _maker(env_id: str) -> Iterator[Callable[..., gym.Env[Any, Any]]]:
    made: list[gym.Env[Any, Any]] = []

    def factory(**kwargs: Any) -> gym.Env[Any, Any]:
        env = gym.make(env_id, **kwargs)
        made.append(env)
        return env

    yield factory
    for env in made:
        env.close()


@pytest.fixture
def make_env() -> Iterator[Callable[..., gym.Env[Any, Any]]]:
    """Tabletop envs, closed after the test."""
    yield from _maker(TABLETOP)


@pytest.fixture
def make_kitchen() -> Iterator[Callable[..., gym.Env[Any, Any]]]:
    """Kitchen envs, closed after the test."""
    yield from _maker(KITCHEN)
