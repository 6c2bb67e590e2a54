"""Errors of the serving code: TF Serving's refusals."""

from __future__ import annotations


class ServingError(Exception):
    """A request TF Serving would refuse; `status` is the HTTP code it would answer with."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status
