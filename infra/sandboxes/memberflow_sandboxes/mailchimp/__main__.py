"""`python -m memberflow_sandboxes.mailchimp --port 8025 --api-key KEY`."""

from memberflow_sandboxes.mailchimp.sandbox import main

if __name__ == "__main__":
    main()
