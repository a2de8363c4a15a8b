"""TLS carried out: this unit's certificate files (what core/tls.py's `next_install` says),
and the leader's record steps."""

from __future__ import annotations

import dataclasses
import logging

from core import model as m
from core import tls
from core.steps import Install, Remove, TlsStep
from engine.context import UnitContext

logger = logging.getLogger(__name__)


def sync_certificates(ctx: UnitContext) -> None:
    """Put the offered certificates in use when safe, keep the CA bundles current on disk,
    and say in peer data what this unit has and what it waits for."""
    waiting: list[str] = []
    for kind in m.KINDS:
        record = ctx.settings.record(kind)
        in_use = ctx.files.in_use(kind)
        offered = ctx.offers.offered.get(kind)
        related = ctx.offers.related.get(kind, False)
        step = tls.next_install(record, related, in_use, offered)
        if isinstance(step, Install):
            logger.info(
                "decision: install-%s-certificate ca=%s cert=%s",
                kind,
                step.material.ca_fp,
                step.material.cert_fp,
            )
            ctx.files.install(kind, step.material)
            in_use = step.material
        elif isinstance(step, Remove):
            logger.info("decision: remove-%s-certificate (TLS off, relation gone)", kind)
            ctx.files.remove(kind)
            in_use = None
        elif step.reason:
            logger.info("%s certificate: %s", kind, step.reason)
        ctx.files.write_bundle(kind, record.bundle)
        ctx.peers.publish_tls(kind, tls.unit_tls(in_use, offered))
        if tls.needs_material(record) and in_use is None:
            waiting.append(f"a {kind} certificate (certificates relation)")
    ctx.me = dataclasses.replace(ctx.me, waiting_for=" and ".join(waiting) or None)


def apply_records(ctx: UnitContext, step: TlsStep) -> bool:
    """Leader: write the new records; this unit's peer URL follows a new scheme."""
    for kind, change in step.changes:
        logger.info(
            "decision: tls-%s stage=%s bundle=%s (%s)",
            kind,
            change.record.stage,
            ",".join(change.record.bundle_fps) or "-",
            change.why,
        )
        ctx.peers.write_tls(kind, change.record)
    ctx.reread_settings()
    return True
