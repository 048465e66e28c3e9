import pytest


@pytest.fixture(scope="module")
def local_stack():
    """The local stack on free ports, with the SQS pollers off so a test drives the onboarding function itself."""
    from memberflow_local.settings import LocalSettings
    from memberflow_local.stack import LocalStack

    settings = LocalSettings.from_env(api_port=0, aws_port=0, mailchimp_port=0)
    with LocalStack(settings, pollers=False) as stack:
        yield stack
