import pytest

# `make test` runs the integration and end-to-end tests on several processes: pytest-xdist with `--dist loadscope
# --no-loadscope-reorder`, whose work units (tests one process runs in a row) are defined here, handed out in the
# collection order below.
SPREAD = (
    "tests/integration/test_local_stack.py",
    "tests/e2e/test_outage_heals.py",
    "tests/e2e/test_escalation_faults.py",
)
"""Modules whose tests each start their own stack (or, for the outage cases, wait long enough to be worth a stack of
their own): every test is its own unit. The tests of any other module share a module-scoped stack (or sandbox) and
form one unit, so the module starts it once."""
LONGEST_FIRST = (
    "tests/e2e/test_demo.py",
    "tests/e2e/test_escalation_faults.py",
    "tests/e2e/test_slow_mailchimp.py",
    "tests/integration/test_sandbox_escalation_services.py",
    # Not long: one-test units of a second or two, the second unit of the processes given a one-test unit above
    # (xdist starts a test when it knows the next one). A long unit there would wait for the longest of all.
    "tests/integration/test_local_stack.py",
    "tests/e2e/test_outage_heals.py",
    "tests/e2e/test_import_csv.py",
    "tests/integration/test_winback_handler.py",
    "tests/e2e/test_platforms_as_they_send.py",
)
"""The units that take longest, longest first: waiting out retries and back-offs with their real delays, or
importing and seeding thousands of members. Handed out first, so the other processes run everything else meanwhile.
The domain unit tests come before all of them."""


def _module(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        module = _module(item.nodeid)
        if module.startswith("tests/unit/"):
            return 0
        if module in LONGEST_FIRST:
            return 1 + LONGEST_FIRST.index(module)
        return 1 + len(LONGEST_FIRST) + (module not in SPREAD)

    items.sort(key=rank)  # stable: collection order within a rank


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ModuleOrTestScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return nodeid if _module(nodeid) in SPREAD else _module(nodeid)

    return ModuleOrTestScheduling(config, log)


@pytest.fixture(scope="module")
def local_stack():
    """The local stack on free ports, with the SQS pollers off so a test drives the onboarding function itself."""
    from memberflow_local.settings import LocalSettings
    from memberflow_local.stack import LocalStack

    settings = LocalSettings.from_env(api_port=0, aws_port=0, mailchimp_port=0)
    with LocalStack(settings, pollers=False) as stack:
        yield stack
