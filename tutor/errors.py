"""The few exceptions a user can see. Each message says what happened and how to fix it."""


class TutorError(Exception):
    """Base class: its message is shown to the user as is."""


class ConfigError(TutorError):
    """A TUTOR_* variable has a value we cannot use."""


class ModelLoadError(TutorError):
    """The model or adapter named in the settings cannot be loaded."""


class GenerationError(TutorError):
    """The model failed while writing a reply."""


class PromptError(TutorError):
    """A prompt template is missing or was rendered without a variable it needs."""


class LessonError(TutorError):
    """A lesson file is invalid. ``problems`` holds one ``path:line: message`` string per problem."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class NotFound(TutorError):
    """A lesson, exercise or learner that does not exist was asked for."""


class ProgressError(TutorError):
    """The progress database cannot be opened, upgraded or reached."""
