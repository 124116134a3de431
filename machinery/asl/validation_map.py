"""The Map state's ``ItemReader``, ``ItemBatcher`` and ``Label`` checks, mixed into the definition
checker of :mod:`machinery.asl.validation` (kept apart to keep that module readable)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from machinery.asl.model import MAX_BATCH_BYTES
from machinery.asl.validation_rules import (
    _HTTP_INVOKE,
    _LABEL_FORBIDDEN,
    _MAX_LABEL,
    _MAX_SECONDS,
    _READER_CONFIG_FIELDS,
    _READER_RESOURCES,
    JSONATA,
    SCHEMA,
    _pointer,
    _type_name,
)


class MapFieldChecks:
    """Checks of a Map state's fields; the primitives (``add``, ``integer`` ...) are the checker's."""

    if TYPE_CHECKING:

        def add(self, path: str, message: str, code: str = SCHEMA) -> None: ...
        def unknown_fields(self, obj: dict[str, Any], allowed: Iterable[str], base: str) -> None: ...
        def expect(self, obj: dict[str, Any], name: str, base: str, kind: str) -> bool: ...
        def exclusive(
            self, obj: dict[str, Any], names: Sequence[str], base: str, *, required: bool = False
        ) -> None: ...
        def jsonata_string(self, value: Any, path: str) -> bool: ...
        def integer(
            self,
            obj: dict[str, Any],
            name: str,
            base: str,
            language: str,
            *,
            minimum: int,
            maximum: int = _MAX_SECONDS,
        ) -> int | None: ...
        def path_field(
            self,
            obj: dict[str, Any],
            name: str,
            base: str,
            *,
            definite: bool,
            nullable: bool = False,
            intrinsic: bool = False,
            context: bool = True,
        ) -> None: ...
        def template(self, value: Any, path: str, language: str) -> None: ...

    def item_batcher(self, state: dict[str, Any], base: str, language: str) -> None:
        """``ItemBatcher``: DISTRIBUTED maps only; a limit of items or bytes per batch; ``BatchInput``."""
        path = _pointer(base, "ItemBatcher")
        batcher = state["ItemBatcher"]
        processor = state.get("ItemProcessor") or state.get("Iterator")
        config = processor.get("ProcessorConfig") if isinstance(processor, dict) else None
        if not isinstance(config, dict) or config.get("Mode") != "DISTRIBUTED":
            self.add(
                path, "The field 'ItemBatcher' is supported only when the ItemProcessor's Mode is DISTRIBUTED"
            )
        fields = ("MaxItemsPerBatch", "MaxInputBytesPerBatch")
        paths = () if language == JSONATA else tuple(f"{field}Path" for field in fields)
        self.unknown_fields(batcher, (*fields, *paths, "BatchInput"), path)
        if not any(name in batcher for name in (*fields, *paths)):
            self.add(
                path, "The ItemBatcher needs MaxItemsPerBatch or MaxInputBytesPerBatch (or their Path forms)"
            )
        for field in fields:
            if language != JSONATA:
                self.exclusive(batcher, (field, f"{field}Path"), path)
            maximum = MAX_BATCH_BYTES if field == "MaxInputBytesPerBatch" else 2**31 - 1
            self.integer(batcher, field, path, language, minimum=1, maximum=maximum)
        if "BatchInput" in batcher:
            self.template(batcher["BatchInput"], _pointer(path, "BatchInput"), language)

    def item_reader(self, state: dict[str, Any], base: str, language: str) -> None:
        """``ItemReader``: S3 (as AWS), the HTTP task, or inline JSON (``Items`` in its parameters)."""
        path = _pointer(base, "ItemReader")
        reader = state["ItemReader"]
        if not isinstance(reader, dict):
            self.add(path, f"Expected value of type Object but was {_type_name(reader)}")
            return
        processor = state.get("ItemProcessor") or state.get("Iterator")
        config = processor.get("ProcessorConfig") if isinstance(processor, dict) else None
        if not isinstance(config, dict) or config.get("Mode") != "DISTRIBUTED":
            self.add(
                path, "The field 'ItemReader' is supported only when the ItemProcessor's Mode is DISTRIBUTED"
            )
        params_field = "Arguments" if language == JSONATA else "Parameters"
        self.unknown_fields(reader, ("Resource", "ReaderConfig", params_field), path)
        params = reader.get(params_field)
        expression = language == JSONATA and self.jsonata_string(params, _pointer(path, params_field))
        if not expression and self.expect(reader, params_field, path, "object"):
            self.template(params, _pointer(path, params_field), language)
        if self.expect(reader, "ReaderConfig", path, "object"):
            self.reader_config(reader["ReaderConfig"], _pointer(path, "ReaderConfig"), language)
        if "Resource" not in reader:
            items = params.get("Items") if isinstance(params, dict) else None
            if not isinstance(params, dict) or not ("Items" in params or "Items.$" in params):
                self.add(path, f"An ItemReader without a Resource needs 'Items' in its {params_field}")
            elif "Items" in params and not isinstance(items, list):
                items_path = _pointer(path, params_field, "Items")
                if not (language == JSONATA and self.jsonata_string(items, items_path)):
                    self.add(_pointer(path, params_field, "Items"), "The field 'Items' must be an array")
            return
        resource = reader["Resource"]
        if resource not in _READER_RESOURCES:
            self.add(
                _pointer(path, "Resource"),
                f"The ItemReader's Resource must be one of {', '.join(_READER_RESOURCES)}",
            )
        elif (
            resource == _HTTP_INVOKE
            and isinstance(params, dict)
            and not {"ApiEndpoint", "ApiEndpoint.$"} & set(params)
        ):
            self.add(_pointer(path, params_field), "The field 'ApiEndpoint' is required but was missing")

    def reader_config(self, config: dict[str, Any], path: str, language: str) -> None:
        """Check an ``ItemReader``'s ``ReaderConfig`` (input type, CSV settings, ``MaxItems``)."""
        self.unknown_fields(config, _READER_CONFIG_FIELDS, path)
        for name, allowed in (
            ("InputType", ("CSV", "JSON", "JSONL", "MANIFEST", "PARQUET")),
            ("CSVHeaderLocation", ("FIRST_ROW", "GIVEN")),
            ("CSVDelimiter", ("COMMA", "PIPE", "SEMICOLON", "SPACE", "TAB")),
        ):
            if name in config and config[name] not in allowed:
                self.add(_pointer(path, name), f"The value of '{name}' must be one of {', '.join(allowed)}")
        headers = config.get("CSVHeaders") or []
        if self.expect(config, "CSVHeaders", path, "array") and not all(isinstance(h, str) for h in headers):
            self.add(_pointer(path, "CSVHeaders"), "The field 'CSVHeaders' must be an array of strings")
        if config.get("CSVHeaderLocation") == "GIVEN" and "CSVHeaders" not in config:
            self.add(path, "The field 'CSVHeaders' is required when CSVHeaderLocation is GIVEN")
        self.exclusive(config, ("MaxItems", "MaxItemsPath"), path)
        self.integer(config, "MaxItems", path, language, minimum=0, maximum=100_000_000)
        self.path_field(config, "MaxItemsPath", path, definite=True)

    def label(self, label: Any, path: str) -> None:
        if not isinstance(label, str):
            self.add(path, f"Expected value of type String but was {_type_name(label)}")
            return
        if len(label) > _MAX_LABEL:
            self.add(path, f"Label must be at most {_MAX_LABEL} characters long")
        for char in label:
            if char in _LABEL_FORBIDDEN or ord(char) < 0x20 or 0x7F <= ord(char) <= 0x9F:
                self.add(path, f"Label contains invalid character: {char!r}")
                return
