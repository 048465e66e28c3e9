"""`memberflow export EMAIL`: everything memberflow holds about a person as one JSON document (the member record and
their due work, identity links, consent ledger, trace, an erasure's keyed hash, and what later automations register
in `memberflow.runtime.personal_data.EXPORTERS`), from the local stack or a deployed one."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(commands: argparse._SubParsersAction) -> None:
    export = commands.add_parser("export", help="everything memberflow holds about a person, as one JSON document")
    export.add_argument("email")
    export.add_argument("--stack", help="a deployed CloudFormation stack name (default: the local stack)")
    export.add_argument("--out", help="write the document to this file (default: standard output)")
    export.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from memberflow.models import check_email
    from memberflow.runtime.personal_data import export_person
    from memberflow_cli.forget import suppression_list
    from memberflow_cli.target import resolve

    try:
        address = check_email(args.email)
    except ValueError as error:
        print(f"not an address: {error}", file=sys.stderr)
        return 2
    assert address
    target = resolve(args.stack)
    suppressions = suppression_list(target)
    try:
        suppressions.key_of("")  # reads the key: an operator without access still gets the rest
    except Exception as error:  # noqa: BLE001
        print(f"(erasures not checked: the suppression key cannot be read: {type(error).__name__})", file=sys.stderr)
        suppressions = None
    document = json.dumps(export_person(address, target.physical, suppressions), indent=2, ensure_ascii=False)
    if args.out:
        Path(args.out).write_text(document + "\n")
        print(f"written to {args.out}", file=sys.stderr)
    else:
        print(document)
    return 0
