"""The ``code_interpreter`` tool: the model's Python, run in the sandbox of `agent_rl.envs.tools.sandbox`.

`SCHEMA` is the OpenAI function schema the chat template shows the model (one string parameter ``code``, as
SPEAR's SandboxFusion tool declares it); `PythonTool` runs a call's ``code`` in a fresh sandbox and returns
what the model reads: stdout, then stderr, then a note when the run timed out, was cut or was killed. A bare
expression on the last line is printed, as in a notebook. The tool never raises on the model's arguments.
"""

from __future__ import annotations

from typing import Any

from agent_rl.envs.tools.sandbox import Limits, run_python, sandbox_missing

NAME = "code_interpreter"

SCHEMA: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": NAME,
        "description": (
            "Run Python 3 code in a fresh sandbox and return its output (stdout, then stderr). Each call "
            "starts from scratch: nothing is kept between calls. There is no network; numpy and sympy are "
            "available. print() what you need to see; the value of a bare expression on the last line is "
            "shown too."
        ),
        "parameters": {
            "type": "object",
            "properties": {
                "code": {"type": "string", "description": "The Python code to run."},
            },
            "required": ["code"],
        },
    },
}


class PythonTool:
    """The ``code_interpreter`` tool: ``tool({"code": "print(1)"}) -> "1"``.

    Construction fails (RuntimeError, the sandbox's one-sentence reason) on a machine that cannot run the
    sandbox, so that an environment refuses to start rather than answer every call with an error."""

    name = NAME
    schema = SCHEMA

    def __init__(self, limits: Limits = Limits(), python: str | None = None):  # noqa: B008
        missing = sandbox_missing()
        if missing:
            raise RuntimeError(missing)
        self.limits = limits
        self.python = python

    def __call__(self, arguments: dict) -> str:
        """Run ``arguments["code"]``; any malformed argument or failure comes back as an error text."""
        code = arguments.get("code") if isinstance(arguments, dict) else None
        if not isinstance(code, str):
            return f'Error: {NAME} takes {{"code": "<Python source>"}}, a string, not {type(code).__name__}.'
        try:
            return run_python(code, self.limits, self.python).text()
        except Exception as error:  # noqa: BLE001 - the model reads what went wrong; the episode goes on
            return f"Error: the code could not be run ({type(error).__name__}: {error})."
