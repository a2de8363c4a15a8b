"""Every status message the charm can show, in one catalogue: its text, what it means, and what
the operator does about it. The core says them through `say`; docs/reference/statuses.md is
generated from this catalogue (`python -m core.messages`), and a test keeps the two equal.

Grouped by concern, as the key's first word says. `{fields}` are filled in when said."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Message:
    """One status message: where it shows (`status`), its text, its meaning, the remedy."""

    key: str
    status: str  # active, waiting, blocked, maintenance; "note" for a part of the app status
    text: str
    meaning: str
    action: str

    def pattern(self) -> re.Pattern[str]:
        """A regex that any filled-in text of this message matches."""
        parts = re.split(r"\{[a-z_]+\}", self.text)
        return re.compile("^" + ".+?".join(re.escape(p) for p in parts) + "$", re.S)


_NONE = "Nothing: it resolves by itself."
M = Message

# A table, one message per entry as the docs show it: kept as written.
# fmt: off
CATALOGUE: tuple[Message, ...] = (
    M('unit.invalid-config', 'blocked',
      'invalid config: {why}',
      'A config value breaks a rule; the running member keeps its config.',
      'Fix the option named: `juju config etcd-k8s <option>=<value>`.'),
    M('unit.no-container', 'waiting',
      'waiting for the etcd container (Pebble)',
      'The workload container is not up yet.',
      _NONE),
    M('unit.no-peers', 'waiting',
      'waiting for the peer relation',
      'Juju has not set up the peer relation yet.',
      _NONE),
    M('unit.waiting-for', 'waiting',
      'waiting for {what} before starting etcd',
      'TLS is on and this unit has no certificate yet.',
      'Check the certificates relation and its provider.'),
    M('unit.bootstrap-planned', 'maintenance',
      'bootstrap planned: this unit starts the cluster next hook',
      'This unit is named to start the cluster once the plan is in peer data.',
      _NONE),
    M('unit.await-bootstrap', 'waiting',
      'waiting for {member} to bootstrap the cluster',
      'Another unit is named to start the cluster.',
      _NONE),
    M('unit.await-plan', 'waiting',
      'waiting for the leader to plan the cluster bootstrap',
      'No cluster yet; the Juju leader plans who starts it.',
      _NONE),
    M('unit.no-token', 'blocked',
      'a member exists but peer app data has no cluster token; refusing to guess',
      'Peer app data lost its cluster token while members exist.',
      'Restore the peer data, or rebuild-cluster from the unit with the most data.'),
    M('unit.await-add', 'waiting',
      'waiting for the leader to add this unit as a learner',
      'The leader adds one learner at a time.',
      _NONE),
    M('unit.await-reachable', 'waiting',
      'waiting to join as learner {member_id}: no etcd member answers from this pod',
      'The learner slot is ready but no voter is reachable from this pod.',
      "If it lasts, check this pod's network."),
    M('unit.stale-ticket', 'waiting',
      'join ticket is stale; waiting for the leader to add this unit again',
      'The ticket names another member than the cluster lists for this unit.',
      _NONE),
    M('unit.join-failed', 'waiting',
      'could not join as learner {member_id}: etcd exited right after it was started (is a '
      'voter reachable from this pod?); trying again on the next hook',
      'etcd exited as it started as a learner; its leftovers were wiped.',
      "Check the pod's network and etcd's log if it repeats."),
    M('data.unjoined-wait', 'waiting',
      'a learner start (member {member_id}) left data behind; waiting for a member to '
      'answer before deciding on it',
      'A learner start may or may not have joined; no member answers to tell.',
      _NONE),
    M('data.hold', 'blocked',
      "not wiping this unit's data: member {member_id} got to raft index {index}, but "
      '{what} at {reference}, so it holds writes the cluster lacks; etcd stays stopped. To'
      ' rejoin, move it aside (never deleted): juju run {unit} discard-data',
      'The cluster dropped this member but its data is ahead of the cluster (a rebuild from'
      ' a member that was behind).',
      'Keep the cluster as it is: `discard-data` moves this data to'
      ' /var/lib/etcd/discarded-<time>, where its keys can still be read with etcdutl.'),
    M('data.lost-self-blocked', 'blocked',
      "member {member_id} is listed but this unit's data is gone; removing it now would "
      'lose quorum',
      "This unit's volume lost its data; removing its member would cost quorum now.",
      'Bring the other members back first.'),
    M('member.cut-off', 'waiting',
      'this member reaches no leader, but {units} report a healthy cluster: this pod is cut'
      ' off from it (check its network)',
      'This member sees no quorum; peer data says the others do.',
      "Check this pod's network."),
    M('member.no-quorum', 'waiting',
      'etcd is running but no member answers: waiting for quorum',
      'No member answers a member list from here.',
      'See the app status for the cluster.'),
    M('member.not-a-member', 'blocked',
      'etcd is running but this unit is not a member of the cluster',
      'The running etcd is not in the live member list (removed, on its way out).',
      'It stops by itself; if not, see `cluster-status`.'),
    M('member.learner-unpublished', 'waiting',
      'learner started, waiting for it to publish itself',
      'The learner started and is catching up.',
      _NONE),
    M('member.unlisted', 'waiting',
      'etcd member not yet listed',
      "This unit's member is not in the member list yet.",
      _NONE),
    M('member.role', 'active',
      '{role}, member {member_id}',
      "This unit's member: leader, follower or learner (catching up).",
      'None.'),
    M('restart.turn', 'note',
      'config change waits for its turn to restart',
      'A config change rolls one member at a time.',
      _NONE),
    M('restart.no-answer', 'note',
      'config change waits: no member answers',
      'The rolling restart waits for the cluster.',
      _NONE),
    M('restart.learner', 'note',
      'config change waits until this member is a voter',
      'A learner restarts once promoted.',
      _NONE),
    M('restart.pending', 'note',
      'config change waits for a rolling restart',
      'This member runs an older config; its turn comes.',
      _NONE),
    M('check.failing', 'note',
      'Pebble check {names} failing',
      "The container's Pebble reports these health checks down (the `ready` one takes the pod out "
      'of the Service and holds a rolling refresh); the charm reconciles when one fails.',
      'Read `juju status` and the etcd log; a check recovers by itself once the member serves.'),
    M('restart.waits', 'note',
      'restarts wait: {why}',
      'The leader grants no restart turn while the cluster is not healthy.',
      _NONE),
    M('restart.waits-no-answer', 'note',
      'restarts wait: no member answers',
      'The leader grants no restart turn without a cluster.',
      _NONE),
    M('restart.joining-learner', 'note',
      'a learner is joining',
      'One change at a time.',
      _NONE),
    M('restart.joining-unit', 'note',
      'a unit is joining',
      'One change at a time.',
      _NONE),
    M('restart.unhealthy', 'note',
      'voters not healthy: {members}',
      'Some voters do not answer.',
      'Check those units if it lasts.'),
    M('cluster.no-answer', 'waiting',
      'no etcd member answers',
      'The leader reaches no member.',
      'See the verdict in the app status.'),
    M('cluster.id-mismatch', 'blocked',
      'cluster id {live} differs from the recorded {recorded}',
      'The members answer as another cluster than the one recorded in peer data.',
      'Find out which cluster is right; rebuild-cluster or restore.'),
    M('cluster.not-adding', 'note',
      'not adding {unit}: voters not healthy: {members}',
      'No member is added while a voter is down.',
      _NONE),
    M('cluster.orphan-healthy', 'note',
      'member {member} has no unit; waiting for it to leave the cluster',
      "A member's unit is gone but the member still answers.",
      _NONE),
    M('cluster.orphan-blocked', 'blocked',
      'member {member} has no unit and is down; removing it would lose quorum',
      'A member with no unit behind it is down; removing it now would cost quorum.',
      'Bring the other members back first.'),
    M('cluster.learner-orphan', 'note',
      'learner {member_id} has no unit behind it',
      'A learner was added for a unit that is gone.',
      _NONE),
    M('cluster.await-learner', 'note',
      'waiting for {unit} to start as a learner',
      'The leader added a learner and waits for its unit to start it.',
      _NONE),
    M('leave.no-answer', 'waiting',
      'no member answers; cannot leave the cluster safely',
      'A departing unit waits for the cluster to remove its member.',
      _NONE),
    M('leave.blocked', 'blocked',
      'removing this member now would lose quorum: the other voters are down',
      'The departing member cannot go without costing quorum.',
      'Bring the others back.'),
    M('app.voters', 'active',
      '{healthy}/{units} units are healthy voters',
      'How many units run a healthy voter; waiting while that is short of all.',
      'None.'),
    M('app.s3-refused', 'note',
      'backups off: s3-credentials {why}',
      'The S3 provider sent a field that breaks the s3 interface\'s rules (named first); '
      'nothing of it is used, and create-backup, list-backups and restore backup-id= refuse.',
      'Fix the provider\'s config (e.g. `juju config s3-integrator endpoint=...`).'),
    M('backup.last', 'note',
      'last backup {id} {age} ago',
      'The newest backup the leader took to S3 (scheduled or by create-backup), and its age.',
      _NONE),
    M('backup.failed', 'note',
      'last backup attempt failed {age} ago: {why}',
      'A scheduled backup failed (shown until a backup succeeds); it is tried again 10 minutes '
      'later, 3 times per window at most, then at the next window.',
      'Fix what the reason names (S3 reachable, credentials, quorum), or run create-backup.'),
    M('app.learner', 'note',
      'learner {member} joining',
      'A unit is joining.',
      _NONE),
    M('app.two', 'note',
      '2 members tolerate no failure: add a unit',
      'Two members: losing one loses quorum.',
      '`juju add-unit etcd-k8s`.'),
    M('app.one', 'note',
      'a single member tolerates no failure',
      'One member.',
      '`juju add-unit etcd-k8s -n 2`.'),
    M('app.restored', 'note',
      'restored from {snapshot}, the other units rejoin as learners',
      'After a restore, the other units rejoin one at a time.',
      _NONE),
    M('app.tls', 'note',
      'peer TLS {peer}, client TLS {client}',
      'Where TLS stands (on, off, switching).',
      'None.'),
    M('quorum.leader-seen', 'note',
      'a member that answers sees a leader',
      'Not shown: the cluster has quorum as far as this unit can tell.',
      'None.'),
    M('quorum.none-answers', 'blocked',
      'no etcd member answers (0 of {members}); check the pods, their volumes and logs',
      'Every unit says its member is down or has no data.',
      'Check the pods and volumes.'),
    M('quorum.lost', 'blocked',
      'quorum lost: {out} of {members} members are down or see no leader; to rebuild from '
      '{unit} (most data, raft index {index}) run: juju run {unit} rebuild-cluster',
      "The members that answer and the units' own reports leave no majority anywhere.",
      'Run the command named, on the unit named.'),
    M('quorum.cut-off', 'waiting',
      '{observer} reaches no etcd leader, but {units} report a healthy cluster through '
      "Juju: {observer} is cut off from it; check its pod's network",
      'This unit cannot reach the others, which say they serve.',
      "Check this pod's network."),
    M('quorum.unknown', 'blocked',
      '{observer} reaches no etcd leader and {units} have not said their members are down: '
      'they may be down, or {observer} cut off; check the pods (rebuild-cluster force=true '
      'only once they are gone for good)',
      'Nothing tells dead from cut off.',
      'Check the pods; force a rebuild only if the others are gone for good.'),
    M('tls.await-certificate', 'note',
      '{kind} TLS waits for a certificate on {units}',
      'Every member needs a certificate before TLS comes on.',
      'Check the certificates relation.'),
    M('tls.client-off-after-auth', 'note',
      'client TLS goes off once etcd auth is off',
      'Auth goes off first, then client TLS.',
      _NONE),
    M('tls.busy-roll', 'note',
      'TLS waits for the rolling restart in progress',
      'One TLS step at a time, after the roll.',
      _NONE),
    M('tls.busy-join', 'note',
      'TLS waits for the joining unit',
      'One change at a time.',
      _NONE),
    M('tls.busy-unhealthy', 'note',
      'TLS waits: not every voter is healthy',
      'No TLS step while a voter is down.',
      'Check the unhealthy voter.'),
    M('clients.refused', 'note',
      'client relations refused: {which}',
      "Client requests refused, each with its reason in its relation's status.",
      "See the client charm's status; fix its request."),
    M('auth.failed', 'note',
      'etcd auth: {why}',
      'etcd auth could not be switched.',
      "See the leader's log."),
    M('auth.root-in-doubt', 'note',
      'root password rotation unsettled: etcd does not say which password it has',
      'A rotate-root-password was cut short; both passwords are kept in the secret.',
      'Nothing: the leader keeps the one etcd accepts once the cluster answers.'),
    M('clients.wait', 'note',
      'client users wait: {why}',
      'A client user or role change failed.',
      "See the leader's log."),
    M('cos.refused', 'note',
      'COS relation data refused: {which}',
      "A COS relation's remote side published data that is not what its interface says "
      '(e.g. a Loki push URL that is not a URL). Shown after the unit status; nothing changed.',
      'Fix or remove the remote application (`juju remove-relation etcd-k8s:logging ...`).'),
    M('refresh.jump', 'blocked',
      'refresh refused: etcd {image} is more than one minor past the {what} ({other}); etcd '
      'upgrades one minor at a time, to {next} first. Roll back: {rollback}',
      'The new image skips a minor; etcd was not started, so the pod stays unready and the roll '
      'halts here.',
      'Roll back with the command shown, then refresh one minor at a time.'),
    M('refresh.major', 'blocked',
      'refresh refused: etcd {image} is another major version than {other}. Roll back: {rollback}',
      'etcd upgrades within a major version only; etcd was not started.',
      'Roll back with the command shown.'),
    M('refresh.downgrade', 'blocked',
      'refresh refused: etcd {image} is below the cluster version {cluster}, and etcd before '
      '3.6 cannot be downgraded once the cluster version moved. Roll back: {rollback}',
      'A downgrade after the roll completed; the other members serve on.',
      'Roll back with the command shown; to go back to the older minor, restore a backup taken '
      'before the upgrade into a cluster of that minor.'),
    M('refresh.downgrade-36', 'blocked',
      "refresh refused: etcd {image} is below the cluster version {cluster}, and no downgrade "
      "was prepared (etcdctl downgrade validate/enable). Roll back: {rollback}",
      'A 3.6+ cluster goes one minor down only after `etcdctl downgrade enable`.',
      'Roll back with the command shown, run `etcdctl downgrade validate <minor>` and '
      '`etcdctl downgrade enable <minor>`, then refresh again.'),
    M('refresh.downgrade-unknown', 'blocked',
      'refresh refused: etcd {image} is older than the etcd {disk} that last ran this data, and '
      'no member answers to say the cluster version. Roll back: {rollback}',
      'Starting an older etcd on newer data is safe only while the cluster version allows it.',
      'Roll back with the command shown, or bring the other members back first.'),
    M('refresh.floor-36', 'blocked',
      'refresh refused: etcd {image} needs every member on 3.5.26 or newer first, {lowest} '
      'runs. Roll back: {rollback}',
      'etcd 3.5 -> 3.6 is supported from 3.5.26 only.',
      'Roll back with the command shown, refresh to etcd 3.5.26+ first, then to 3.6.'),
    M('refresh.auth-34-35', 'blocked',
      'refresh refused: etcd does not support a 3.4 -> 3.5 rolling upgrade with auth on. '
      'Roll back: {rollback}',
      'Auth is on (client TLS is on); see docs/explanation/refresh.md for the ways to 3.5.',
      'Roll back with the command shown, then follow docs/explanation/refresh.md.'),
    M('refresh.version', 'note',
      'etcd {release}',
      'Every member runs this release and the cluster version is on its minor.',
      'None.'),
    M('refresh.cluster-moving', 'note',
      'every member runs etcd {release}, the cluster version is still {cluster}',
      'The roll is done; etcd moves the cluster version up within seconds.',
      _NONE),
    M('refresh.mixed', 'note',
      'refresh under way: members run etcd {releases}, cluster version {cluster}',
      'A roll is in progress (or halted): the members run different releases.',
      'Let the roll finish; if a unit is blocked, follow its message.'),
    M('unit.leaving', 'maintenance',
      'left the etcd cluster; unit is being removed',
      "Scale down: this unit's member has left.",
      'None.'),
)
# fmt: on

BY_KEY: dict[str, Message] = {m.key: m for m in CATALOGUE}


def say(key: str, **fields: object) -> str:
    """The catalogue's message `key`, filled in."""
    return BY_KEY[key].text.format(**fields)


def known(text: str) -> Message | None:
    """The catalogue message `text` is a filling-in of, if any."""
    return next((m for m in CATALOGUE if m.pattern().match(text)), None)


def reference() -> str:
    """docs/reference/statuses.md, as the catalogue says it."""
    lines = [
        "# Status messages",
        "",
        "Generated from `src/core/messages.py` (`python -m core.messages` in `src/`); a test",
        "keeps this page and the catalogue equal. `{field}` is filled in when shown. A `note` is",
        "a part of the application status, after its first part (`k/N units are healthy",
        "voters`), separated by `; `.",
        "",
        "| message | status | what it means | what to do |",
        "|---|---|---|---|",
    ]
    for m in CATALOGUE:
        cells = [f"`{m.text}`", m.status, m.meaning, m.action]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: nocover
    print(reference(), end="")
