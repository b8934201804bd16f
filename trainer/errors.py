"""The one exception type the training stage raises for problems a user can fix."""


class TrainingError(RuntimeError):
    """Training cannot start or go on (missing data, unusable model, ...)."""
