"""The demo's request bars: each run of requests that nothing interrupts is counted against its own length."""

import io
import re

from memberflow_local import demo
from memberflow_local.story import Story


def test_a_scene_split_by_a_drain_shows_each_run_of_requests_against_its_own_count(monkeypatch):
    deliver = {"kind": "deliver", "source": "slack"}
    steps = [deliver] * 7 + [{"kind": "drain"}] + [deliver] * 15
    played: list[str] = []
    monkeypatch.setattr(demo, "_deliver", lambda step, settings, api, results: (200, "queued"))
    monkeypatch.setattr(demo, "_play", lambda step, *args: played.append(step["kind"]))
    out = io.StringIO()

    demo._play_scene(steps, stack=None, settings=None, api="", results=None, story=Story(out))

    bars = re.findall(r"\] (\d+)/(\d+)  requests replayed", out.getvalue())
    assert bars[-1] == ("15", "15") and ("7", "7") in bars
    assert {total for _, total in bars} == {"7", "15"}
    assert re.findall(r"answers: (.*)", out.getvalue()) == ["7 x 200 queued", "15 x 200 queued"]
    assert played == ["drain"]
