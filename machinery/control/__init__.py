"""Use cases behind the API: registering services and workflows, starting and following events.

The API layer parses HTTP and calls these; they hold the rules (what a valid service is, which version an
execution pins) and call down into asl, engine, runtime and storage.
"""
