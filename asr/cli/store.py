"""The schema's defaults in Hydra's ConfigStore: what every YAML file in ``conf/`` extends.

``schema/<group>`` (``schema/model``, ``schema/data``, ...) holds a training group's dataclass
defaults, ``schema/<command>`` a command's top-level settings (its config groups left out), and
``<tool>`` the whole config of a command without YAML (``sweep-table``, ``average``, ...). A group
file starts from its schema (``defaults: [/schema/model@_here_, _self_]``) or from another option
of its group, and holds only what differs. The nodes are plain dicts built from the dataclasses,
so :func:`asr.config.schema.from_dict` remains the one validator and its messages stay ours.
"""

from __future__ import annotations

from hydra.core.config_store import ConfigStore

from asr.config.commands import COMMAND_CONFIGS, TOOL_CONFIGS
from asr.config.schema import GROUPS, defaults_dict

SCHEMA = "schema"  # the ConfigStore group of the schema nodes; not a group users choose from


def tool_config_name(command: str) -> str:
    return command.replace("-", "_")


def register() -> None:
    """Store every schema node (idempotent: storing again replaces a node with the same one)."""
    cs = ConfigStore.instance()
    groups = tuple(GROUPS.values())
    for group, cls in GROUPS.items():
        cs.store(group=SCHEMA, name=group, node=defaults_dict(cls))
    for command, cls in COMMAND_CONFIGS.items():
        cs.store(group=SCHEMA, name=command, node=defaults_dict(cls, exclude=groups))
    for command, cls in TOOL_CONFIGS.items():
        cs.store(name=tool_config_name(command), node=defaults_dict(cls))
