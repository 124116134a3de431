"""The AWS Step Functions API: the JSON 1.0 protocol on ``POST /``, a front door over the same use cases.

It translates actions, ARNs and error names, nothing else: a state machine is a workflow, an execution
is an event, and what one API creates the other lists (``docs/aws-api.md``).
"""

from __future__ import annotations

# The action modules register their handlers with the protocol's dispatcher when imported.
from machinery.aws import executions, machines, maprun, tasks, teststate  # noqa: F401
from machinery.aws.protocol import blueprint

__all__ = ["blueprint"]
