"""Each tab's generator: loaded through ``<family>.inference.load`` (the same loader as
``predict.py``), once per precision, or the one-line reason why the tab has none."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from common.errors import UserError

PRECISIONS = ("float32", "auto", "mixed_float16", "mixed_bfloat16")


def parse_weights_flags(values: list[str] | None, families) -> dict[str, str]:
    """``["srgan=runs/srgan/x", ...]`` -> ``{"srgan": "runs/srgan/x"}``; a bad entry is a UserError."""
    chosen = {}
    for value in values or []:
        family, sep, path = value.partition("=")
        family = family.strip()
        if not sep or not path:
            raise UserError(f"--weights {value}: write FAMILY=PATH, e.g. srgan=runs/srgan/paper-srgan")
        if family not in families:
            raise UserError(f"--weights {value}: unknown family {family!r}; use one of {', '.join(families)}")
        chosen[family] = path
    return chosen


@dataclass
class ModelSlot:
    """One family's generator. ``problem`` is the one line shown in the tab when it has none."""

    family: str
    weights: str | None = None
    problem: str | None = None
    _loaded: dict = field(default_factory=dict, repr=False)

    @property
    def ready(self) -> bool:
        return self.problem is None

    def inference(self):
        return importlib.import_module(f"{self.family}.inference")

    def get(self, precision: str = "float32"):
        """The ``Loaded`` generator for ``precision`` (built under that dtype policy, then cached).

        The global Keras policy is set back to float32 afterwards; the page runs one model at a
        time, so no other build sees the temporary policy.
        """
        from common.precision import resolve_inference_precision, set_precision

        if self.problem is not None:
            raise UserError(self.problem)
        policy = set_precision(resolve_inference_precision(precision, self.family))
        try:
            if policy not in self._loaded:
                self._loaded[policy] = self.inference().load(self.weights)
        finally:
            set_precision("float32")
        return self._loaded[policy]

    def describe(self) -> str:
        loaded = self.get()
        return loaded.description

    def scale(self) -> int:
        return int(getattr(self.get().config, "scale", 1) or 1)


def load_slots(families, weights: dict[str, str]) -> dict[str, ModelSlot]:
    """A slot per family, its float32 generator loaded now.

    A family without a trained model (or whose loader fails) gets a ``problem`` line instead, so
    the other tabs still work; a file named with ``--weights`` that cannot be loaded is the user's
    explicit choice, so its UserError goes up (the command stops with that one line).
    """
    slots = {}
    for family in families:
        slot = ModelSlot(family, weights.get(family))
        try:
            slot.get()
        except UserError as error:
            if slot.weights is not None:
                raise
            slot.problem = str(error)
        except Exception as error:  # noqa: BLE001 (a broken family must not take the page down)
            if slot.weights is not None:
                raise UserError(f"{slot.weights}: cannot load this {family} model "
                                f"({type(error).__name__}: {error})") from error
            slot.problem = f"cannot load the {family} model ({type(error).__name__}: {error})"
        slots[family] = slot
    return slots
