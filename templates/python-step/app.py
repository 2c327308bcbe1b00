"""my-step: a docket step in Python. Rename the directory, `NAME`, and the
package and world in wit/world.wit together (see docs/plugins-python.md).
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

NAME = "my-step"
VERSION = "0.1.0"

CONFIG_SCHEMA = {"type": "object", "required": ["minimum"], "properties": {"minimum": {"type": "integer"}}}
INPUT_SCHEMA = {"type": "object", "required": ["age"], "properties": {"age": {"type": "integer"}}}


def parse_config(text: str) -> int:
    config = json.loads(text)
    if not isinstance(config, dict) or not isinstance(config.get("minimum"), int):
        raise ValueError("invalid config at `/minimum`: expected an integer")
    return config["minimum"]


class Step(exports.Step):
    def describe(self) -> Info:
        return Info(
            name=NAME,
            version=VERSION,
            kind=Kind.VALIDATE,
            description="Rejects an applicant under the minimum age.",
            config_schema=json.dumps(CONFIG_SCHEMA),
            input_schema=json.dumps(INPUT_SCHEMA),
            output_schema=json.dumps(INPUT_SCHEMA),
            routes=[],
        )

    def check_config(self, config: str) -> list[str]:
        try:
            parse_config(config)
        except ValueError as err:
            raise Err(str(err))
        return []

    def run(self, ctx: Context, config: str, input: str) -> Outcome:
        try:
            minimum = parse_config(config)
        except ValueError as err:
            raise Err(StepError_Permanent(str(err)))
        applicant = json.loads(input)
        if not isinstance(applicant, dict) or not isinstance(applicant.get("age"), int):
            return Outcome_Reject([Problem("/age", "invalid-input", "expected the age, an integer")])
        if applicant["age"] < minimum:
            return Outcome_Reject([Problem("/age", "too-young", f"the applicant must be at least {minimum}")])
        log.log(log.Level.INFO, f"case {ctx.case_id}: old enough")
        return Outcome_Continue(input)
