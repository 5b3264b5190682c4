"""PyBullet worlds behind the Gymnasium API. No torch, no policies: everything else builds on it.

Importing this package registers ``embodied/Tabletop-v0`` and ``embodied/Kitchen-v0``.
"""

from gymnasium.envs.registration import register

TABLETOP_ID = "embodied/Tabletop-v0"
KITCHEN_ID = "embodied/Kitchen-v0"

register(
    id=TABLETOP_ID,
    entry_point="envs.tabletop:TabletopEnv",
    max_episode_steps=2500,
)
register(
    id=KITCHEN_ID,
    entry_point="envs.kitchen:KitchenEnv",
    max_episode_steps=4000,
)
