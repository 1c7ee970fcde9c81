"""User-facing errors: raised with a message that says what is wrong and what to do.

The CLI prints them as one line (no traceback).  Everything else is a bug.
"""


class GaspError(RuntimeError):
    """Base class of errors caused by the user's input or environment."""


class ModelLoadError(GaspError):
    """A model path, GGUF file or server could not be used."""


class DataError(GaspError):
    """A data file is missing or not in the expected format (message names file and line)."""


class ContextLengthError(GaspError):
    """A prompt does not fit the model's context window."""


class BackendUnavailable(GaspError):
    """An optional extra (vLLM, verl, Ray, llama.cpp) is not installed or cannot run here."""
