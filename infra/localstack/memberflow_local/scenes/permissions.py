"""The closing check: every AWS call the functions made during the demo was one their role in template.yaml allows.
moto would have answered any call; a deployed function gets only what its role grants (permissions.py)."""

from __future__ import annotations

from collections import Counter

from . import SceneContext


def play(scene: SceneContext) -> None:
    audit = scene.stack.permissions
    if audit is None:
        scene.check(False, "the local stack checks the functions' AWS calls against their roles")
        return
    denied = Counter(str(call) for call in audit.denied)
    for text, times in denied.most_common(5):
        scene.say(f"denied {times}x: {text}")
    scene.say(f"{audit.checked} AWS calls of the functions checked against their roles in template.yaml")
    scene.check(audit.checked > 0 and not denied, "every AWS call a function made is one its role allows")
