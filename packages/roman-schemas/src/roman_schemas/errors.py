"""The exceptions of roman-schemas, each one line naming the file and the problem."""

from __future__ import annotations


class ProductError(Exception):
    """Base of every product error; ``str()`` is ``"<subject>: <problem>"`` on one line."""

    def __init__(self, subject: str, problem: str) -> None:
        self.subject = subject
        self.problem = " ".join(str(problem).split())
        super().__init__(f"{subject}: {self.problem}")


class ProductReadError(ProductError):
    """The file is missing, truncated, or not ASDF at all."""


class ProductValidationError(ProductError):
    """The content breaks the product's schema or model."""


class WrongProductType(ProductError):
    """The file holds a different product than the one asked for."""


class UnknownProductType(ProductError):
    """No product of that name (or tag) is known to this version of roman-schemas."""
