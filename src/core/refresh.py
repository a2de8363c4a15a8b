"""Refresh (`juju refresh`), decided over plain data: whether a recreated pod may start etcd
from its image on the data it finds (the version-skew guard), what the 3.6 downgrade
procedure asks for, what `pre-refresh-check` refuses, and what the application's status says
about the versions its members run.

etcd's own rules (etcd.io upgrade_3_5, upgrade_3_6, downgrade_3_6): upgrade one minor at a
time; a mixed cluster runs at its lowest minor (the cluster version) and moves up once every
member runs the new one; a member never runs below the cluster version, and from 3.6 a
downgrade is prepared with `etcdctl downgrade validate/enable <minor>` (which lowers the
cluster version first); before 3.6 there is no downgrade once the cluster version moved;
3.5 -> 3.6 needs every member on 3.5.26 or newer first; a 3.4 -> 3.5 rolling upgrade with auth
on is not supported.

The guard is asked just before a pod starts etcd on data it already holds, or joins: refused,
the pod starts nothing, its ready check never passes, and Kubernetes halts the roll there.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from core.messages import say

Release = tuple[int, int, int]

FLOOR_FOR_3_6: Release = (3, 5, 26)
IMAGE = "gcr.io/etcd-development/etcd:v{release}"  # the official image, as the guide pins it


def parse(text: str | None) -> Release | None:
    """ "3.5.1", "v3.5.1", "3.5" (a cluster version) or "3.5.0" -> (3, 5, 1) ...; else None."""
    match = re.match(r"^v?(\d+)\.(\d+)(?:\.(\d+))?", (text or "").strip())
    if match is None:
        return None
    return int(match[1]), int(match[2]), int(match[3] or 0)


def minor(release: Release) -> str:
    return f"{release[0]}.{release[1]}"


@dataclass(frozen=True)
class Versions:
    """What a pod about to start etcd knows of versions."""

    image: str  # `etcd --version` of this pod's image, "3.5.1"
    cluster: str | None = None  # a live member's cluster version ("3.4"); None: none answered
    disk: str | None = None  # the release that last ran this unit's data; None: unknown/none
    members: tuple[str, ...] = ()  # the releases the live members run (endpoint status)
    auth_on: bool = False  # etcd auth is on (peer app data)


@dataclass(frozen=True)
class Judgement:
    """The guard's answer: `refusal` None means start; `why` names the rule, for the log."""

    why: str
    refusal: str | None = None

    @property
    def allowed(self) -> bool:
        return self.refusal is None


def rollback(release: str) -> str:
    """The command that puts back the image of `release`."""
    return f"juju refresh etcd-k8s --resource etcd-image={IMAGE.format(release=release)}"


def guard(versions: Versions) -> Judgement:
    """May this pod's image start etcd here? One rule after another; the first that refuses
    says why and how to roll back (to the release the data last ran, else the cluster's)."""
    image = parse(versions.image)
    if image is None:
        return Judgement("image version unreadable: etcd itself judges")
    cluster, disk = parse(versions.cluster), parse(versions.disk)
    if cluster is None and disk is None:
        return Judgement("nothing to compare with: a new member")
    back = versions.disk or _release_like(versions.members, cluster) or versions.cluster or ""
    for check in (_major, _jump, _downgrade, _floor, _auth):
        refusal = check(image, cluster, disk, versions, back)
        if refusal is not None:
            return Judgement(check.__name__.lstrip("_"), refusal)
    return Judgement(_allowed_why(image, cluster, disk))


def _release_like(members: Iterable[str], cluster: Release | None) -> str | None:
    """A member's full release on the cluster's minor: the image to roll back to."""
    for text in sorted(members):
        release = parse(text)
        if release is not None and cluster is not None and release[:2] == cluster[:2]:
            return text
    return None


def _allowed_why(image: Release, cluster: Release | None, disk: Release | None) -> str:
    base = cluster or disk
    assert base is not None
    if disk is not None and image[:2] < disk[:2]:
        return "back to the cluster version (a roll rolled back before the cluster version moved)"
    if image[:2] == base[:2]:
        return "same minor"
    if image[:2] > base[:2]:
        return "one minor up"
    return "below the cluster version"  # pragma: no cover  (_downgrade refused it)


def _major(
    image: Release, cluster: Release | None, disk: Release | None, v: Versions, back: str
) -> str | None:
    for other in (cluster, disk):
        if other is not None and other[0] != image[0]:
            return say("refresh.major", image=v.image, other=minor(other), rollback=rollback(back))
    return None


def _jump(
    image: Release, cluster: Release | None, disk: Release | None, v: Versions, back: str
) -> str | None:
    for what, other in (("cluster version", cluster), ("data on disk", disk)):
        if other is not None and image[1] > other[1] + 1:
            return say(
                "refresh.jump",
                image=v.image,
                what=what,
                other=minor(other),
                next=f"{other[0]}.{other[1] + 1}",
                rollback=rollback(back),
            )
    return None


def _downgrade(
    image: Release, cluster: Release | None, disk: Release | None, v: Versions, back: str
) -> str | None:
    """Below the cluster version etcd never runs. Below the data's release it may, only while
    the cluster version has not moved past the image (a roll rolled back part way), or once a
    3.6 downgrade lowered it: so with no live member to ask, a newer data's release refuses."""
    if cluster is not None and image[:2] < cluster[:2]:
        key = "refresh.downgrade-36" if cluster[:2] >= (3, 6) else "refresh.downgrade"
        return say(key, image=v.image, cluster=minor(cluster), rollback=rollback(back))
    if cluster is None and disk is not None and image[:2] < disk[:2]:
        return say("refresh.downgrade-unknown", image=v.image, disk=v.disk, rollback=rollback(back))
    return None


def _floor(
    image: Release, cluster: Release | None, disk: Release | None, v: Versions, back: str
) -> str | None:
    """3.5 -> 3.6: every 3.5 this pod or the cluster runs must be 3.5.26 or newer first."""
    if image[:2] != (3, 6):
        return None
    known = [r for r in (disk, *(parse(m) for m in v.members)) if r is not None]
    low = [r for r in known if r[:2] == (3, 5) and r < FLOOR_FOR_3_6]
    if cluster is not None and cluster[:2] == (3, 5) and not known:
        low = [cluster]  # a 3.5 cluster whose patch releases nobody can tell: not proven
    if not low:
        return None
    lowest = ".".join(map(str, min(low)))
    return say("refresh.floor-36", image=v.image, lowest=lowest, rollback=rollback(back))


def _auth(
    image: Release, cluster: Release | None, disk: Release | None, v: Versions, back: str
) -> str | None:
    """etcd does not support a 3.4 -> 3.5 rolling upgrade with auth on (upgrade_3_5)."""
    base = cluster or disk
    if v.auth_on and image[:2] == (3, 5) and base is not None and base[:2] == (3, 4):
        return say("refresh.auth-34-35", image=v.image, rollback=rollback(back))
    return None


# ---- 3.6's downgrade procedure -----------------------------------------------------------------


def downgrade_plan(cluster: str, target: str) -> tuple[str, ...]:
    """The etcdctl commands, then the refresh, that take a 3.6+ cluster one minor down (leader
    last: Kubernetes' roll reaches ordinal 0 last, and pre-refresh-check moves leadership
    there). Raises ValueError with the reason when no such procedure exists."""
    now, to = parse(cluster), parse(target)
    if now is None or to is None:
        raise ValueError(f"versions must read as X.Y: cluster {cluster!r}, target {target!r}")
    if now[:2] < (3, 6):
        raise ValueError(
            f"etcd {minor(now)} has no downgrade procedure (it came with 3.6): restore a backup "
            f"taken before the upgrade into a cluster of etcd {minor(to)}"
        )
    if to[0] != now[0] or to[1] != now[1] - 1:
        raise ValueError(f"a downgrade goes one minor down: {minor(now)} to {now[0]}.{now[1] - 1}")
    return (
        f"etcdctl downgrade validate {minor(to)}",
        f"etcdctl downgrade enable {minor(to)}",
        f"juju refresh etcd-k8s --resource etcd-image={IMAGE.format(release=f'{minor(to)}.x')}",
    )


# ---- pre-refresh-check ---------------------------------------------------------------------


@dataclass(frozen=True)
class ClusterFacts:
    """What pre-refresh-check looks at before a roll."""

    voters: int
    healthy_voters: int
    has_leader: bool
    learners: tuple[str, ...] = ()
    alarms: tuple[str, ...] = ()  # "<member id> <ALARM>"
    busy: tuple[str, ...] = ()  # operations in progress, named ("a TLS roll", ...)


def pre_refresh_refusal(facts: ClusterFacts) -> str | None:
    """Why a roll must not start now, or None: a roll restarts every member one by one, so it
    needs every voter healthy, nothing joining, no alarm and nothing else moving."""
    if not facts.has_leader or facts.healthy_voters < facts.voters:
        return (
            f"the cluster is not healthy ({facts.healthy_voters}/{facts.voters} voters healthy"
            f"{'' if facts.has_leader else ', no leader'}): fix it before a refresh"
        )
    if facts.learners:
        return f"a learner is joining ({', '.join(facts.learners)}): wait until it is promoted"
    if facts.alarms:
        return f"etcd has alarms ({', '.join(facts.alarms)}): see the alarm-disarm action first"
    if facts.busy:
        return f"wait until it is done: {', '.join(facts.busy)} in progress"
    return None


def roll_order(units: Iterable[str]) -> tuple[str, ...]:
    """The order Kubernetes recreates pods in: highest ordinal first."""
    return tuple(sorted(units, key=lambda u: int(u.rsplit("/", 1)[1]), reverse=True))


# ---- what the application's status says -------------------------------------------------------


def version_note(members: Iterable[str], cluster: str | None) -> str | None:
    """For the app status: the release every member runs once the cluster version is on it;
    mid-roll, which releases run and where the cluster version stands."""
    releases = sorted({r for r in members if r}, key=lambda r: parse(r) or (0, 0, 0))
    if not releases:
        return None
    if len(releases) == 1:
        release = parse(releases[0])
        moved = cluster is None or (release is not None and parse(cluster) == (*release[:2], 0))
        if moved:
            return say("refresh.version", release=releases[0])
        return say("refresh.cluster-moving", release=releases[0], cluster=cluster)
    return say("refresh.mixed", releases=", ".join(releases), cluster=cluster or "?")
