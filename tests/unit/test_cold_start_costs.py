"""What every cold start of every function pays, kept small by rules a test can hold.

- Importing the layer builds no pydantic validator: every model defers its build to its first validation
  (memberflow.schema.Model), since a function imports many models and validates a few.
- pydantic's plugin lookup (every installed distribution's entry points) is off for every function.
- The queue consumers load Powertools' batch utility before pydantic, so it leaves out its own pydantic record
  models, which they never use.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]

IMPORT_THE_LAYER = """
import importlib, json, pkgutil, sys
import memberflow
import pydantic
for info in pkgutil.walk_packages(memberflow.__path__, "memberflow."):
    importlib.import_module(info.name)

def subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from subclasses(sub)

models = {f"{m.__module__}.{m.__qualname__}": m for m in subclasses(pydantic.BaseModel)
          if m.__module__.startswith("memberflow.")}
built = sorted(name for name, m in models.items() if m.__pydantic_complete__)
print(json.dumps({"models": sorted(models), "built": built}))
"""


SQS_CONSUMERS = sorted(
    path.parent.name for path in (ROOT / "functions").glob("*/app.py") if "SqsConsumer" in path.read_text()
)

IMPORT_A_HANDLER = """
import importlib.util, json, sys
sys.path.append(sys.argv[2])
spec = importlib.util.spec_from_file_location("app", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(json.dumps(sorted(name for name in sys.modules if name.startswith("aws_lambda_powertools.utilities.parser"))))
"""


def _layer_models() -> dict[str, list[str]]:
    answer = subprocess.run(
        [sys.executable, "-c", IMPORT_THE_LAYER],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT / "shared",
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT / "shared"), "PYTHONDONTWRITEBYTECODE": "1"},
    )
    return json.loads(answer.stdout.strip().splitlines()[-1])


def test_importing_the_whole_layer_builds_no_model_validator():
    found = _layer_models()
    assert len(found["models"]) > 40, found["models"]  # the walk reached the layer's models
    assert found["built"] == [], f"built at import (derive them from memberflow.schema.Model): {found['built']}"


def test_a_deferred_model_still_validates_and_names_the_bad_field():
    from pydantic import ValidationError

    from memberflow.config import MailchimpSettings

    try:
        MailchimpSettings.model_validate({"MAILCHIMP_SECRET_ARN": "arn"})
    except ValidationError as error:
        assert [e["loc"] for e in error.errors()] == [("MAILCHIMP_LIST_ID",)]
    else:
        raise AssertionError("a missing list id was accepted")


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_multi_constructor("!", lambda loader, suffix, node: None)


def test_every_function_skips_pydantic_plugin_discovery():
    template = yaml.load((ROOT / "template.yaml").read_text(), Loader=_Loader)
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["PYDANTIC_DISABLE_PLUGINS"] in ("true", "1", "__all__")
    for name, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Serverless::Function":
            own = (resource["Properties"].get("Environment") or {}).get("Variables") or {}
            assert "PYDANTIC_DISABLE_PLUGINS" not in own, name


@pytest.mark.parametrize("function", SQS_CONSUMERS)
def test_a_queue_consumer_loads_no_powertools_parser_models(function):
    code_dir = ROOT / "functions" / function
    answer = subprocess.run(
        [sys.executable, "-c", IMPORT_A_HANDLER, str(code_dir / "app.py"), str(code_dir)],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT / "shared"), "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert json.loads(answer.stdout.strip().splitlines()[-1]) == []


def test_the_queue_consumers_are_found():
    assert {"onboarding", "escalation", "member_import", "event_sync"} <= set(SQS_CONSUMERS)
