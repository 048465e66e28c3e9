"""`runtime.container.reset()` is a new Lambda container: nothing built from an earlier environment survives it."""

from __future__ import annotations


def test_a_new_container_builds_event_sync_anew_from_its_environment(monkeypatch):
    """The local stack runs stacks one after another in one process: reset() is the new container, and event
    sync's dependencies (its secrets' ARNs, its tables) must not outlive the stack they were built for."""
    from memberflow.runtime import event_sync
    from memberflow.runtime.container import reset

    variables = {
        "EVENTBRITE_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:1:secret:eventbrite-old",
        "MAILCHIMP_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:1:secret:mailchimp",
        "MAILCHIMP_LIST_ID": "list1",
        "REGISTRATIONS_TABLE_NAME": "registrations",
        "MEMBERS_TABLE_NAME": "members",
        "TRACE_TABLE_NAME": "trace",
        "SUPPRESSION_KEY_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:1:secret:suppression",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    reset()
    first = event_sync.sync_deps()
    assert event_sync.sync_deps() is first
    reset()
    assert event_sync.sync_deps.cache_info().currsize == 0
    assert event_sync.sync_deps() is not first
    reset()
