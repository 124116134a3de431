"""ARNs as Step Functions forms them, and reading them back.

- state machine ``arn:aws:states:<region>:<account>:stateMachine:<name>``, a version ``...:<name>:<n>``,
  an alias ``...:<name>:<alias>``;
- execution ``arn:aws:states:<region>:<account>:execution:<machine>:<name>``; an express execution
  ``...:express:<machine>:<name>:<id>``; a distributed Map's child execution
  ``...:execution:<machine>/<label>:<id>``;
- map run ``arn:aws:states:<region>:<account>:mapRun:<machine>/<label>:<run id>``;
- activity ``arn:aws:states:<region>:<account>:activity:<name>``.

Region and account come from the request (its SigV4 credential scope); machinery keeps one world, so an
ARN is looked up by its names whatever region and account it carries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from machinery.aws.errors import invalid_arn

_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):states:(?P<region>[a-z0-9-]*):(?P<account>\d{12}):(?P<rest>.+)$"
)


@dataclass(frozen=True)
class Scope:
    """The region and account of one request: every ARN of its answer carries them."""

    region: str
    account: str
    partition: str = "aws"

    def arn(self, resource: str) -> str:
        return f"arn:{self.partition}:states:{self.region}:{self.account}:{resource}"

    def state_machine(self, name: str) -> str:
        return self.arn(f"stateMachine:{name}")

    def version(self, name: str, number: int) -> str:
        return self.arn(f"stateMachine:{name}:{number}")

    def alias(self, name: str, alias: str) -> str:
        return self.arn(f"stateMachine:{name}:{alias}")

    def execution(self, machine: str, name: str) -> str:
        return self.arn(f"execution:{machine}:{name}")

    def express_execution(self, machine: str, name: str, execution_id: str) -> str:
        return self.arn(f"express:{machine}:{name}:{execution_id}")

    def map_run(self, machine: str, label: str, run_id: str) -> str:
        return self.arn(f"mapRun:{machine}/{label}:{run_id}")

    def activity(self, name: str) -> str:
        return self.arn(f"activity:{name}")


@dataclass(frozen=True)
class Arn:
    """A parsed ARN: ``kind`` (``stateMachine``, ``execution``, ``express``, ``mapRun``, ``activity``) and
    its name parts after the kind."""

    text: str
    kind: str
    parts: tuple[str, ...]


def parse(arn: object, *kinds: str) -> Arn:
    """Split ``arn``; raise ``InvalidArn`` unless it is a Step Functions ARN of one of ``kinds``."""
    if not isinstance(arn, str):
        raise invalid_arn(arn)
    match = _ARN.match(arn)
    if match is None:
        raise invalid_arn(arn)
    kind, _, rest = match["rest"].partition(":")
    parts = tuple(rest.split(":")) if rest else ()
    if kinds and kind not in kinds:
        raise invalid_arn(arn, f"Resource type not valid in this context: '{kind}'")
    if not parts or any(not part for part in parts):
        raise invalid_arn(arn)
    return Arn(arn, kind, parts)


@dataclass(frozen=True)
class MachineRef:
    """A state machine ARN, perhaps qualified with a version number or an alias name."""

    name: str
    version: int | None = None
    alias: str | None = None


def state_machine_ref(arn: object, qualified: bool = True) -> MachineRef:
    """Read a state machine ARN; with ``qualified`` a version or alias suffix is allowed."""
    parsed = parse(arn, "stateMachine")
    if len(parsed.parts) == 1:
        return MachineRef(parsed.parts[0])
    if len(parsed.parts) != 2 or not qualified:
        raise invalid_arn(arn)
    name, qualifier = parsed.parts
    if qualifier.isdigit():
        return MachineRef(name, version=int(qualifier))
    return MachineRef(name, alias=qualifier)


def resource_key(arn: str) -> str:
    """What names a resource whatever its ARN's region and account: ``stateMachine:name`` ..."""
    return arn.split(":", 5)[5]
