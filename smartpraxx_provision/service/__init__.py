"""The HTTP service (shop webhook, Starter Excel upload): thin, like cli.py."""
