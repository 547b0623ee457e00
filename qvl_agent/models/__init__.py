"""Models: turn a prompt and a screenshot into response text."""

from qvl_agent.models.base import Model, ModelError, Response

__all__ = ["Model", "ModelError", "Response"]
