"""The layer's architecture and its dependencies are checked, not just written down.

- The import contracts in pyproject.toml ([tool.importlinter], run by `make lint`) hold on the real tree, and they
  break, naming the contract, when a copy of the package gets a deliberate violation.
- shared/requirements.txt is a hashed lock of exactly what shared/requirements.in asks for (`make lock`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = ROOT / "pyproject.toml"
CONTRACTS = {c["id"]: c for c in tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]["contracts"]}
LOCK = ROOT / "shared" / "requirements.txt"
LOCK_INPUT = ROOT / "shared" / "requirements.in"


# ------------------------------------------------------------------------------ import contracts
def lint_imports(package_dir: Path) -> tuple[int, str]:
    """Runs lint-imports with the project's contracts on the package memberflow found in package_dir."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(package_dir), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from importlinter.cli import lint_imports_command; lint_imports_command()",
            "--no-cache",
            "--no-logo",
            str(PYPROJECT),
        ],
        cwd=package_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    # lint-imports wraps long lines: compare with whitespace collapsed.
    return done.returncode, " ".join((done.stdout + done.stderr).split())


def verdict(output: str, contract_id: str) -> str:
    name = " ".join(CONTRACTS[contract_id]["name"].split())
    found = re.search(re.escape(name) + r" (KEPT|BROKEN)", output)
    assert found, f"contract {contract_id!r} missing from the report:\n{output}"
    return found.group(1)


def test_the_real_tree_keeps_every_contract():
    code, output = lint_imports(ROOT / "shared")
    assert code == 0, output
    assert f"Contracts: {len(CONTRACTS)} kept, 0 broken." in output, output
    for contract_id in CONTRACTS:
        assert verdict(output, contract_id) == "KEPT", output


VIOLATIONS = {
    "domain imports the AWS SDK": ("onboarding/join.py", "import boto3", "core-has-no-infrastructure", "boto3"),
    "domain imports an adapter": (
        "onboarding/join.py",
        "from memberflow.adapters import aws",
        "core-has-no-infrastructure",
        "memberflow.adapters.aws",
    ),
    "one capability imports another": (
        "onboarding/join.py",
        "from memberflow.intake import service",
        "capabilities-are-independent",
        "memberflow.intake.service",
    ),
    "the layer imports the local stack": (
        "config.py",
        "import memberflow_local",
        "layer-has-no-dev-code",
        "memberflow_local",
    ),
}


@pytest.mark.parametrize(("module", "line", "contract_id", "imported"), VIOLATIONS.values(), ids=VIOLATIONS.keys())
def test_a_violation_breaks_its_contract(tmp_path, module, line, contract_id, imported):
    copy = tmp_path / "memberflow"
    shutil.copytree(ROOT / "shared" / "memberflow", copy, ignore=shutil.ignore_patterns("__pycache__"))
    source = copy / module
    source.write_text(source.read_text() + f"\n{line}  # deliberate violation\n")

    code, output = lint_imports(tmp_path)

    assert code != 0, output
    assert verdict(output, contract_id) == "BROKEN", output
    importer = "memberflow." + module.removesuffix(".py").replace("/", ".")
    assert f"{importer} -> {imported}" in output, output
    for other in CONTRACTS.keys() - {contract_id}:
        assert verdict(output, other) == "KEPT", output


# ------------------------------------------------------------------------------ the layer's lock
def requirement_lines(path: Path) -> list[str]:
    """The requirement lines of a requirements file, continuation lines joined, comments dropped."""
    text = path.read_text().replace("\\\n", " ")
    lines = (line.split(" #", 1)[0].strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def locked() -> dict[str, tuple[str, list[str]]]:
    """Package name -> (version specifier, hashes) from shared/requirements.txt."""
    pins = {}
    for line in requirement_lines(LOCK):
        requirement, *options = line.split()
        hashes = [option for option in options if option.startswith("--hash=sha256:")]
        assert len(hashes) == len(options), f"only --hash options are expected: {line}"
        name = canonicalize_name(Requirement(requirement).name)
        assert name not in pins, f"{name} is locked twice"
        pins[name] = (str(Requirement(requirement).specifier), hashes)
    return pins


def test_the_lock_pins_every_package_with_hashes():
    pins = locked()
    assert pins
    for name, (specifier, hashes) in pins.items():
        assert re.fullmatch(r"==[^,*]+", specifier), f"{name} is not pinned with ==: {specifier!r}"
        assert hashes, f"{name} has no --hash"


def test_the_lock_covers_requirements_in_and_leaves_the_runtime_sdk_out():
    wanted = {canonicalize_name(Requirement(line).name) for line in requirement_lines(LOCK_INPUT)}
    pins = locked()
    assert wanted, "shared/requirements.in lists nothing"
    assert wanted <= pins.keys(), f"missing from the lock (run `make lock`): {sorted(wanted - pins.keys())}"
    # The Lambda Python runtime provides the AWS SDK; a copy in the layer would shadow it.
    assert not {"boto3", "botocore"} & pins.keys()


def test_the_layer_installs_what_the_package_depends_on():
    """[project] dependencies are what the functions import at run time; the layer brings all of them but boto3."""
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    declared = {canonicalize_name(Requirement(d).name) for d in dependencies}
    wanted = {canonicalize_name(Requirement(line).name) for line in requirement_lines(LOCK_INPUT)}
    assert wanted == declared - {"boto3"}
