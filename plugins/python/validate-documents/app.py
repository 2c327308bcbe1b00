"""validate-documents: the document-completeness check, a docket step in Python.

An application names its kind (`new-building`, `extension`, ...) and lists
its attachments; the config says which attachments each kind requires. The
step lets a complete application through unchanged and rejects an
incomplete one with one problem per missing attachment, so the applicant
learns everything that is missing at once.

Built into a component with componentize-py against wit/ (see
docs/plugins-python.md); `cargo xtask plugins` does it.
"""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import log
from wit_world.imports.types import (
    Context,
    Info,
    Kind,
    Outcome,
    Outcome_Continue,
    Outcome_Reject,
    Problem,
    StepError_Permanent,
)

NAME = "validate-documents"
VERSION = "1.0.0"

CONFIG_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["required"],
    "additionalProperties": False,
    "properties": {
        "required": {
            "description": "The attachment types each application kind requires.",
            "type": "object",
            "additionalProperties": {
                "type": "array",
                "items": {"type": "string", "minLength": 1},
            },
        },
        "unknown_kind": {
            "description": "What to do with a kind the table does not list: `reject` (the default) or `continue`.",
            "enum": ["reject", "continue"],
        },
    },
}

INPUT_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["kind", "attachments"],
    "properties": {
        "kind": {"type": "string"},
        "attachments": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["type"],
                "properties": {"type": {"type": "string"}, "name": {"type": "string"}},
            },
        },
    },
}


class ConfigError(Exception):
    """The config is not what CONFIG_SCHEMA describes; `pointer` says where."""

    def __init__(self, pointer: str, message: str):
        super().__init__(f"invalid config at `{pointer}`: {message}")


def escape(segment: str) -> str:
    """One JSON Pointer (RFC 6901) segment."""
    return segment.replace("~", "~0").replace("/", "~1")


def parse_config(text: str) -> dict:
    """The config as {kind: [attachment type]}, plus the unknown-kind policy.

    Checked by hand against CONFIG_SCHEMA: the guest carries no JSON Schema
    library, and a hand check gives the pointer of the first wrong value.
    """
    try:
        config = json.loads(text)
    except ValueError as err:
        raise ConfigError("", f"not JSON: {err}") from None
    if not isinstance(config, dict):
        raise ConfigError("", "expected an object")
    for key in config:
        if key not in ("required", "unknown_kind"):
            raise ConfigError(f"/{escape(key)}", "unknown field, expected `required` or `unknown_kind`")
    table = config.get("required")
    if not isinstance(table, dict):
        raise ConfigError("/required", "expected an object mapping application kinds to attachment types")
    for kind, types in table.items():
        pointer = f"/required/{escape(kind)}"
        if not isinstance(types, list):
            raise ConfigError(pointer, "expected a list of attachment types")
        for i, item in enumerate(types):
            if not isinstance(item, str) or not item:
                raise ConfigError(f"{pointer}/{i}", "expected a non-empty string")
    unknown = config.get("unknown_kind", "reject")
    if unknown not in ("reject", "continue"):
        raise ConfigError("/unknown_kind", f"expected `reject` or `continue`, got `{unknown}`")
    return {"required": table, "unknown_kind": unknown}


def invalid_input(pointer: str, message: str) -> Outcome:
    # The same shape the Rust SDK gives input that does not parse: a
    # rejection the applicant can act on, not an error of the step.
    return Outcome_Reject([Problem(pointer, "invalid-input", message)])


class Step(exports.Step):
    def describe(self) -> Info:
        return Info(
            name=NAME,
            version=VERSION,
            kind=Kind.VALIDATE,
            description="Rejects an application that lacks an attachment its kind requires, naming every missing one.",
            config_schema=json.dumps(CONFIG_SCHEMA),
            input_schema=json.dumps(INPUT_SCHEMA),
            output_schema=json.dumps(INPUT_SCHEMA),
            routes=[],
        )

    def check_config(self, config: str) -> list[str]:
        try:
            parse_config(config)
        except ConfigError as err:
            raise Err(str(err))
        return []

    def run(self, ctx: Context, config: str, input: str) -> Outcome:
        try:
            rules = parse_config(config)
        except ConfigError as err:
            raise Err(StepError_Permanent(str(err)))
        try:
            application = json.loads(input)
        except ValueError as err:
            return invalid_input("", f"not JSON: {err}")
        if not isinstance(application, dict):
            return invalid_input("", "expected an object")
        kind = application.get("kind")
        if not isinstance(kind, str):
            return invalid_input("/kind", "expected the application kind, a string")
        attachments = application.get("attachments")
        if not isinstance(attachments, list):
            return invalid_input("/attachments", "expected a list of attachments")
        present = set()
        for i, attachment in enumerate(attachments):
            if not isinstance(attachment, dict) or not isinstance(attachment.get("type"), str):
                return invalid_input(f"/attachments/{i}", "expected an object with a `type` string")
            present.add(attachment["type"])

        required = rules["required"].get(kind)
        if required is None:
            if rules["unknown_kind"] == "continue":
                log.log(log.Level.WARN, f"no attachment list for application kind `{kind}`; let through")
                return Outcome_Continue(input)
            return Outcome_Reject(
                [Problem("/kind", "unknown-kind", f"`{kind}` is not an application kind this office handles")]
            )
        missing = [t for t in required if t not in present]
        if missing:
            return Outcome_Reject(
                [
                    Problem("/attachments", "missing-attachment", f"the `{kind}` application needs a `{t}` attachment")
                    for t in missing
                ]
            )
        log.log(log.Level.INFO, f"all {len(required)} required attachments present for `{kind}`")
        return Outcome_Continue(input)
