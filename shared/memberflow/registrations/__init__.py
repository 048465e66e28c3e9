"""Event registration sync: Eventbrite and Zoom registrations and attendance into registration records, the
member store and Mailchimp tags (`event:<slug>:registered|attended|no_show`), healed by a scheduled
reconciliation against Eventbrite's attendee lists."""
