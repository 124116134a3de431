"""What an outbound call may be: its URL, its headers and its target (allow/deny lists against SSRF).

Every call machinery makes (registered services, URL resources, the HTTP task, Lambda, HTTP ItemReaders,
webhooks) goes through :class:`machinery.runtime.httpclient.HttpClient`, which builds its request with
:func:`parse_url` and :func:`request_headers` and checks the address it is about to connect to with
:meth:`OutboundPolicy.check_address`. Definitions are checked earlier, without resolving names, with
:meth:`OutboundPolicy.refusal` (a refused address there is a 409).

Each failure is an :class:`OutboundError` carrying the ASL error name the failed state reports.
"""

from __future__ import annotations

import base64
import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import quote, unquote, urlsplit

from machinery.errors import MachineryError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Link-local addresses (the cloud metadata services live there: 169.254.169.254, fd00:ec2::254 on AWS'
#: IPv6) and the "this host" addresses that Linux connects to loopback with.
DEFAULT_DENIED_TARGETS = "169.254.0.0/16,fe80::/10,fd00:ec2::254,0.0.0.0/8,::"
SCHEMES = {"http": 80, "https": 443}

#: Headers the client computes itself from the URL and the body; a caller's value is dropped: a
#: caller-made ``Content-Length`` or ``Transfer-Encoding`` would let event data frame a second request.
RESERVED_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
        "expect",
    }
)

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# RFC 9110 field values: visible characters, spaces and tabs; CR, LF, NUL and the other controls would
# end the header line (or confuse whoever reads it).
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# Labels of letters, digits, "-" and "_" (container names often have one).
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_HOST_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")
_LONE_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
# RFC 3986 pchar plus "/" (path) and "?" (query); everything else is percent-encoded. "%" stays: an
# escape already in the URL is kept as it is (a lone "%" becomes %25 first).
_PATH_SAFE = "/:@!$&'()*+,;=~%-._"
_QUERY_SAFE = _PATH_SAFE + "?"


class OutboundError(MachineryError):
    """An outbound call failed; ``asl_error`` is the error its state fails with."""

    asl_error = "States.Http.Socket"


class InvalidRequest(OutboundError):
    """The request cannot be sent as asked: a bad URL, method or header (data decided it: retrying
    cannot help, so the state fails for good)."""

    asl_error = "States.Runtime"


class TargetRefused(OutboundError):
    """The target is not allowed by ``MACHINERY_ALLOWED_TARGETS`` / ``MACHINERY_DENIED_TARGETS``."""

    asl_error = "States.Permissions"


class CallTimedOut(OutboundError):
    asl_error = "States.Timeout"


class ProtocolError(OutboundError):
    """The peer answered something that is not an acceptable HTTP/1.x reply."""


class ConnectionFailed(OutboundError):
    """The connection could not be opened, or broke before the reply was complete."""


@dataclass(frozen=True, slots=True)
class Url:
    """A URL taken apart for the wire: what to connect to, the ``Host`` header and the request target."""

    scheme: str
    host: str  # lower case, IDNA-encoded, IPv6 without brackets
    port: int
    host_header: str
    target: str  # percent-encoded path and query
    authorization: str | None  # Basic credentials from user:password@ (never put into Host)

    @property
    def address(self) -> IPAddress | None:
        """The host as an IP address, when it is one."""
        return _ip_literal(self.host)


@lru_cache(maxsize=4096)
def parse_url(url: str) -> Url:
    """Parse and normalise an ``http://`` or ``https://`` URL (cached: service addresses repeat).

    :raises InvalidRequest: not http(s), no host, a host that is not a name or an IP address, a bad port.
    """
    # urlsplit silently drops tabs, CRs and LFs; encoding them first keeps what was sent visible (and a
    # host containing one invalid).
    cleaned = url.replace("\t", "%09").replace("\r", "%0D").replace("\n", "%0A")
    try:
        parts = urlsplit(cleaned)
        port = parts.port
    except ValueError as exc:
        raise InvalidRequest(f"invalid URL {url!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise InvalidRequest(f"invalid URL {url!r}: only http:// and https:// are allowed")
    host = parts.hostname or ""
    address = _ip_literal(host)
    if address is None:
        try:
            host = host.encode("idna").decode("ascii") if not host.isascii() else host
        except UnicodeError:
            raise InvalidRequest(f"invalid URL {url!r}: {host!r} is not a valid host name") from None
        if not _HOST_NAME.fullmatch(host):
            raise InvalidRequest(f"invalid URL {url!r}: {host!r} is not a valid host name")
    port = port or SCHEMES[scheme]
    shown = f"[{host}]" if address is not None and address.version == 6 else host
    host_header = shown if port == SCHEMES[scheme] else f"{shown}:{port}"
    target = quote(_LONE_PERCENT.sub("%25", parts.path or "/"), safe=_PATH_SAFE)
    if not target.startswith("/"):
        target = "/" + target
    if parts.query:
        target += "?" + quote(_LONE_PERCENT.sub("%25", parts.query), safe=_QUERY_SAFE)
    authorization = None
    if parts.username is not None:
        credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        authorization = "Basic " + base64.b64encode(credentials.encode()).decode("ascii")
    return Url(scheme, host, port, host_header, target, authorization)


def header_problem(name: object, value: object) -> str | None:
    """Why a header cannot be sent (names the header), or None when it can."""
    if not isinstance(name, str) or not _TOKEN.fullmatch(name):
        return f"header name {name!r} is not a valid HTTP token (letters, digits and !#$%&'*+-.^_`|~)"
    if not isinstance(value, str):
        return f"header '{name}' must have a string value"
    if _BAD_VALUE.search(value):
        return f"header '{name}' has a CR, LF, NUL or other control character in its value"
    return None


def check_method(method: str) -> str:
    """The method in upper case. :raises InvalidRequest: not an HTTP token."""
    if not _TOKEN.fullmatch(method):
        raise InvalidRequest(f"invalid HTTP method {method!r}")
    return method.upper()


def request_headers(headers: Mapping[str, str]) -> list[tuple[str, str]]:
    """The caller's headers as they go on the wire: validated, the reserved ones dropped.

    :raises InvalidRequest: naming the first header with a bad name or value.
    """
    result = []
    for name, value in headers.items():
        # Names repeat from call to call (Idempotency-Key, a service's own): checked once each.
        if name not in _VALID_NAMES or not isinstance(value, str) or _BAD_VALUE.search(value):
            problem = header_problem(name, value)
            if problem is not None:
                raise InvalidRequest(problem, header=str(name))
            if len(_VALID_NAMES) < 10_000:
                _VALID_NAMES.add(name)
        if name.lower() not in RESERVED_HEADERS:
            result.append((name, value))
    return result


_VALID_NAMES: set[str] = set()


@dataclass(frozen=True)
class TargetRule:
    """One entry of an allow or deny list: a host name (``*.`` or a leading dot for its subdomains) or
    an IP address / CIDR range."""

    text: str
    network: IPNetwork | None = None
    name: str | None = None
    subdomains: bool = False

    @classmethod
    def parse(cls, text: str) -> TargetRule:
        """:raises ValueError: neither a CIDR range, an address nor a host name."""
        entry = text.strip().lower()
        try:
            return cls(entry, network=ipaddress.ip_network(entry.strip("[]"), strict=False))
        except ValueError:
            pass
        subdomains = entry.startswith(("*.", "."))
        name = entry.removeprefix("*").removeprefix(".").rstrip(".")
        if not name or not _HOST_NAME.fullmatch(name):
            raise ValueError(f"{text!r} is neither an IP address, a CIDR range nor a host name")
        return cls(entry, name=name, subdomains=subdomains)

    def matches_name(self, host: str) -> bool:
        if self.name is None:
            return False
        host = host.rstrip(".")
        return host == self.name or (self.subdomains and host.endswith("." + self.name))

    def matches_address(self, address: IPAddress) -> bool:
        return (
            self.network is not None and address.version == self.network.version and address in self.network
        )


def parse_rules(text: str | Iterable[str]) -> tuple[TargetRule, ...]:
    """Rules from a comma-separated setting (or a list of entries)."""
    entries = text.split(",") if isinstance(text, str) else list(text)
    return tuple(TargetRule.parse(entry) for entry in entries if entry.strip())


@dataclass(frozen=True)
class OutboundPolicy:
    """Which targets outbound calls may reach: a target is allowed when it is on the allow list (or the
    allow list is empty) and not on the deny list. Names are matched as written in the URL; address
    ranges against the address the name resolves to, at connect time."""

    allowed: tuple[TargetRule, ...] = ()
    denied: tuple[TargetRule, ...] = field(default_factory=lambda: parse_rules(DEFAULT_DENIED_TARGETS))

    @classmethod
    def from_settings(cls, allowed: str, denied: str) -> OutboundPolicy:
        """From ``MACHINERY_ALLOWED_TARGETS`` and ``MACHINERY_DENIED_TARGETS``. :raises ValueError:"""
        return cls(parse_rules(allowed), parse_rules(denied))

    def check_address(self, host: str, address: IPAddress) -> None:
        """At connect time: may ``host``, resolved to ``address``, be called?

        :raises TargetRefused: saying which list and entry refused it.
        """
        reason = self._address_refusal(host, _unmapped(address))
        if reason is not None:
            raise TargetRefused(f"outbound call to {host} ({address}) refused: {reason}", target=host)

    def refusal(self, url: str) -> str | None:
        """At definition time, without resolving names: why ``url`` can never be called, or None."""
        try:
            parsed = parse_url(url)
        except InvalidRequest as exc:
            return exc.message
        address = parsed.address
        if address is not None:
            return self._address_refusal(parsed.host, _unmapped(address))
        for rule in self.denied:
            if rule.matches_name(parsed.host):
                return f"{parsed.host} is in MACHINERY_DENIED_TARGETS ({rule.text})"
        allowed_by_address = any(rule.network is not None for rule in self.allowed)
        if self.allowed and not allowed_by_address and not self._allowed_name(parsed.host):
            return f"{parsed.host} is not in MACHINERY_ALLOWED_TARGETS"
        return None

    def _address_refusal(self, host: str, address: IPAddress) -> str | None:
        for rule in self.denied:
            if rule.matches_name(host) or rule.matches_address(address):
                return f"{host if rule.name else address} is in MACHINERY_DENIED_TARGETS ({rule.text})"
        if self.allowed and not (
            self._allowed_name(host) or any(rule.matches_address(address) for rule in self.allowed)
        ):
            return f"{host} ({address}) is not in MACHINERY_ALLOWED_TARGETS"
        return None

    def _allowed_name(self, host: str) -> bool:
        return any(rule.matches_name(host) for rule in self.allowed)


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _unmapped(address: IPAddress) -> IPAddress:
    """``::ffff:169.254.169.254`` is 169.254.169.254 to the network: check it as such."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
