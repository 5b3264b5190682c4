"""PyBullet worlds behind the Gymnasium API. No torch, no policies: everything else builds on it.

Importing this package registers ``embodied/Tabletop-v0`` and ``embodied/Kitchen-v0``.
"""

from gymnasium.envs.registration import register

register(
    id="embodied/Tabletop-v0",
    entry_point="envs.tabletop:TabletopEnv",
    max_episode_steps=2500,
)
register(
    id="embodied/Kitchen-v0",
    entry_point="envs.kitchen:KitchenEnv",
    max_episode_steps=4000,
)
