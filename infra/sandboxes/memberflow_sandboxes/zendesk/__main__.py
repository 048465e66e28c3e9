"""`python -m memberflow_sandboxes.zendesk --port 8030`."""

from memberflow_sandboxes.zendesk.sandbox import main

if __name__ == "__main__":
    main()
