"""`make bench`'s library floor: the bare reference handler served under a module that loads the libraries every
function uses (pydantic, Powertools' Logger and Metrics; batch processing and idempotency for queue consumers), so
the floor measures those libraries and nothing of memberflow's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "benchmarks"))

from run import library_floor  # noqa: E402

REFERENCE = """
import json

def handler(event, context):
    return {"statusCode": 200, "body": json.dumps({"echo": event["n"]})}
"""

SERVE = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("app", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
answer = module.handler({"n": 7}, None)
loaded = [name for name in sys.argv[2:] if name in sys.modules]
ours = any(name.startswith("memberflow") for name in sys.modules)
print(json.dumps({"answer": answer, "loaded": loaded, "memberflow": ours}))
"""

LIBRARIES = ["pydantic", "aws_lambda_powertools.logging", "aws_lambda_powertools.metrics"]
CONSUMER_LIBRARIES = ["aws_lambda_powertools.utilities.batch", "aws_lambda_powertools.utilities.idempotency"]


@pytest.mark.parametrize("queue_consumer", [False, True])
def test_the_floor_serves_the_reference_with_the_libraries_loaded_and_nothing_of_memberflow(
    tmp_path: Path, queue_consumer: bool
) -> None:
    reference = tmp_path / "reference.py"
    reference.write_text(REFERENCE)
    floor = library_floor(reference, queue_consumer, tmp_path)

    out = subprocess.run(
        [sys.executable, "-c", SERVE, str(floor), *LIBRARIES, *CONSUMER_LIBRARIES],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    served = json.loads(out.stdout.strip().splitlines()[-1])

    assert served["answer"] == {"statusCode": 200, "body": json.dumps({"echo": 7})}
    expected = LIBRARIES + (CONSUMER_LIBRARIES if queue_consumer else [])
    assert served["loaded"] == expected
    assert served["memberflow"] is False
