"""The three things every imperative piece works with, together: the unit's context, its
observer and its member driver (what the reconciler's handlers use too)."""

from __future__ import annotations

from dataclasses import dataclass

from engine.context import UnitContext
from engine.member import MemberDriver
from engine.observe import Observer


@dataclass(frozen=True)
class Tools:
    """A unit's context, observer and member driver for one hook or action."""

    ctx: UnitContext
    observer: Observer
    driver: MemberDriver

    @classmethod
    def of(cls, ctx: UnitContext) -> Tools:
        observer = Observer(ctx)
        return cls(ctx, observer, MemberDriver(ctx, observer))
