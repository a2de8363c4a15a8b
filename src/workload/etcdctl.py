"""etcdctl in the workload container, `-w json`, parsed into the core's types.

The adapter takes a `Runner` (argv, timeout -> exit code, stdout, stderr; with `env` and
`stdin` keywords when a call needs them) so that it knows nothing of Pebble; `workload/pebble.py`
provides the Pebble one, unit tests a canned one. Passwords travel in the environment or on
stdin, never in argv (which any process in the pod can read).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from core.model import ClusterView, Member
from literals import ETCDCTL
from workload.etcdctl_errors import EtcdctlError

logger = logging.getLogger(__name__)

STATUS_TIMEOUT = 1.0  # per endpoint, asked one after another; a live member answers in ms
LIST_TIMEOUT = 2.0
# etcdctl logs in (a bcrypt check and a raft round) within its dial timeout: one second is
# plenty on a quiet node and too short on a loaded one ("context deadline exceeded").
DIAL_TIMEOUT = 1.0
LOGIN_DIAL_TIMEOUT = 3.0
ALARMS = {1: "NOSPACE", 2: "CORRUPT"}  # etcdserverpb.AlarmType

Runner = Callable[..., "tuple[int, str, str]"]


def member_id_hex(raw: int | str) -> str:
    return f"{int(raw):x}"


def _member(entry: dict) -> Member:
    return Member(
        id=member_id_hex(entry["ID"]),
        name=entry.get("name", ""),
        peer_urls=tuple(entry.get("peerURLs", ())),
        client_urls=tuple(entry.get("clientURLs", ())),
        is_learner=bool(entry.get("isLearner", False)),
    )


@dataclass(frozen=True)
class EndpointStatus:
    """One member's answer to `endpoint status`."""

    endpoint: str
    member_id: str
    leader_id: str
    version: str
    db_size: int
    db_size_in_use: int
    raft_term: int
    raft_index: int
    revision: int
    is_learner: bool
    errors: tuple[str, ...] = ()


@dataclass(frozen=True)
class ClientCert:
    """Files in the container for https endpoints: the CA bundle and this unit's certificate."""

    cacert: str
    cert: str
    key: str

    def args(self) -> list[str]:
        return [f"--cacert={self.cacert}", f"--cert={self.cert}", f"--key={self.key}"]


class Etcdctl:
    """Calls against a set of client endpoints. Each endpoint keeps its own scheme: while a
    cluster rolls between plaintext and TLS, some members serve http and others https, and
    one etcdctl call cannot mix them, so a call goes to one scheme's endpoints at a time."""

    def __init__(
        self,
        run: Runner,
        endpoints: Sequence[str],
        timeout: float = 5.0,
        cert: ClientCert | None = None,
        auth: tuple[str, str] | None = None,
    ):
        self._run = run
        self.endpoints = list(endpoints)
        self.timeout = timeout
        self.cert = cert
        self.auth = auth  # (user, password): etcd auth is on, or may be (a restored cluster)

    def _call(
        self,
        *args: str,
        endpoints: Sequence[str] | None = None,
        json_output: bool = True,
        timeout: float | None = None,
        each: bool = False,
        stdin: str | None = None,
        authenticate: bool = True,
    ) -> str:
        """One call, or one per scheme when the endpoints mix them: the first that succeeds
        answers; with `each`, every group is asked and the JSON lists are joined."""
        extra: dict[str, object] = {}
        # Reads of membership and status need no user (`authenticate=False`): a password login
        # costs a bcrypt check (and in 3.5 a raft round) on every etcdctl run.
        if authenticate and self.auth is not None:
            # etcdctl reads ETCDCTL_USER / ETCDCTL_PASSWORD like its --user / --password flags.
            extra["env"] = {"ETCDCTL_USER": self.auth[0], "ETCDCTL_PASSWORD": self.auth[1]}
        if stdin is not None:
            extra["stdin"] = stdin
        groups = _by_scheme(endpoints if endpoints is not None else self.endpoints)
        if len(groups) <= 1:
            return self._call_group(args, groups[0] if groups else [], json_output, timeout, extra)
        outputs: list[str] = []
        failure: EtcdctlError | None = None
        for group in groups:
            try:
                out = self._call_group(args, group, json_output, timeout, extra)
            except EtcdctlError as error:
                failure = error
                if each and error.stdout.strip():
                    outputs.append(error.stdout)
                continue
            if not each:
                return out
            outputs.append(out)
        if each and outputs:
            merged = [entry for out in outputs for entry in json.loads(out or "[]")]
            if failure is not None and len(outputs) < len(groups):
                raise EtcdctlError(args, failure.exit_code, failure.stderr, json.dumps(merged))
            return json.dumps(merged)
        assert failure is not None
        raise failure

    def _call_group(
        self,
        args: Sequence[str],
        endpoints: list[str],
        json_output: bool,
        timeout: float | None,
        extra: dict[str, object],
    ) -> str:
        timeout = timeout or self.timeout
        dial = LOGIN_DIAL_TIMEOUT if "env" in extra else DIAL_TIMEOUT
        argv = [ETCDCTL, f"--endpoints={','.join(endpoints)}", f"--dial-timeout={dial:g}s"]
        argv.append(f"--command-timeout={timeout:g}s")
        if self.cert is not None and endpoints and endpoints[0].startswith("https://"):
            argv += self.cert.args()
        if json_output:
            argv += ["-w", "json"]
        argv += args
        # The exec's own budget: user and role commands of etcdctl 3.4/3.5 ignore
        # --command-timeout (context.TODO()), so this is what bounds them.
        code, out, err = self._run(argv, dial + timeout + 5, **extra)
        if code != 0:
            raise EtcdctlError(args, code, err, out)
        return out

    def member_list(self) -> ClusterView:
        # Milliseconds on a healthy cluster; without quorum (3.5 reads it linearizably) a long
        # wait would only slow every hook down.
        data = json.loads(self._call("member", "list", timeout=LIST_TIMEOUT, authenticate=False))
        return ClusterView(
            cluster_id=member_id_hex(data["header"]["cluster_id"]),
            members=tuple(sorted((_member(m) for m in data.get("members", [])), key=_by_name)),
        )

    def member_add_learner(self, name: str, peer_url: str) -> Member:
        data = json.loads(self._call("member", "add", name, f"--peer-urls={peer_url}", "--learner"))
        return _member(data["member"])

    def member_promote(self, member_id: str) -> None:
        # Plain output: etcdctl 3.5.1's JSON printer panics after a successful promote.
        self._call("member", "promote", member_id, json_output=False)

    def member_update(self, member_id: str, peer_url: str) -> None:
        self._call("member", "update", member_id, f"--peer-urls={peer_url}")

    def member_remove(self, member_id: str) -> None:
        self._call("member", "remove", member_id)

    def move_leader(self, member_id: str) -> None:
        """Must reach the current leader: give it every voter's endpoint. Plain output: the
        JSON printer misbehaves for move-leader on 3.5.1. No credentials: etcdctl 3.5.1 reads
        its environment twice for move-leader and then dies on its own ETCDCTL_PASSWORD
        ("conflicting environment variable"); etcd asks none for MoveLeader."""
        self._call("move-leader", member_id, json_output=False, authenticate=False)

    def endpoint_status(self, endpoints: Sequence[str]) -> list[EndpointStatus]:
        """Status of each endpoint that answers; the ones that do not are left out."""
        if not endpoints:
            return []
        try:
            # A member that is down costs the whole command timeout: keep it short.
            out = self._call(
                "endpoint",
                "status",
                endpoints=endpoints,
                timeout=STATUS_TIMEOUT,
                each=True,
                authenticate=False,
            )
        except EtcdctlError as error:
            # etcdctl exits 1 when any endpoint fails but still prints the ones that answered.
            out = error.stdout
            if not out.strip():
                logger.debug("endpoint status: %s", error.reason)
                return []
        return [_status(entry) for entry in json.loads(out or "[]")]

    def endpoint_health(self, endpoints: Sequence[str]) -> dict[str, str]:
        """endpoint -> "healthy" or etcd's reason; a learner answers a quorum read with an error."""
        if not endpoints:
            return {}
        try:
            out = self._call(
                "endpoint", "health", endpoints=endpoints, timeout=STATUS_TIMEOUT * 2, each=True
            )
        except EtcdctlError as error:
            out = error.stdout
        health: dict[str, str] = {}
        for entry in json.loads(out or "[]"):
            ok = bool(entry.get("health"))
            health[entry.get("endpoint", "")] = (
                "healthy" if ok else entry.get("error") or "unhealthy"
            )
        return health

    def catch_up(self, endpoint: str) -> None:
        """A linearizable read through one member: it answers only once it has applied
        everything committed before the call, so a snapshot taken next holds every write
        acknowledged before it."""
        self._call("get", "etcd-k8s/catch-up", endpoints=[endpoint], json_output=False)

    def snapshot_save(self, endpoint: str, path: str, timeout: float) -> None:
        """Stream a consistent snapshot from one member into `path` in the container. etcdctl
        writes `<path>.part` and renames it only once the whole stream is in."""
        self._call(
            "snapshot", "save", path, endpoints=[endpoint], json_output=False, timeout=timeout
        )

    def defrag(self, endpoint: str, timeout: float) -> None:
        """Defragment one member; it serves nothing while this runs."""
        self._call("defrag", endpoints=[endpoint], json_output=False, timeout=timeout)

    def compact(self, revision: int, timeout: float) -> None:
        """Drop history before `revision`; --physical waits until the space is really free."""
        self._call("compact", str(revision), "--physical", json_output=False, timeout=timeout)

    def alarm_list(self) -> list[tuple[str, str]]:
        """(member id, alarm name) for every active alarm."""
        data = json.loads(self._call("alarm", "list"))
        return [
            (member_id_hex(a.get("memberID", 0)), ALARMS.get(int(a.get("alarm", 0)), "UNKNOWN"))
            for a in data.get("alarms") or []
        ]

    def alarm_disarm(self) -> None:
        self._call("alarm", "disarm")

    # ---- auth: users, roles, and the switch itself ---------------------------------------------

    def user_names(self) -> list[str]:
        return list(json.loads(self._call("user", "list")).get("users") or [])

    def role_names(self) -> list[str]:
        return list(json.loads(self._call("role", "list")).get("roles") or [])

    def user_roles(self, name: str) -> list[str]:
        return list(json.loads(self._call("user", "get", name)).get("roles") or [])

    def user_add(self, name: str, password: str | None) -> None:
        """Without a password the user can only authenticate by certificate (CN = name)."""
        if password is None:
            self._call("user", "add", name, "--no-password", json_output=False)
        else:
            self._call(
                "user", "add", name, "--interactive=false", json_output=False, stdin=password + "\n"
            )

    def user_passwd(self, name: str, password: str) -> None:
        self._call(
            "user", "passwd", name, "--interactive=false", json_output=False, stdin=password + "\n"
        )

    def user_delete(self, name: str) -> None:
        self._call("user", "delete", name, json_output=False)

    def user_grant_role(self, name: str, role: str) -> None:
        self._call("user", "grant-role", name, role, json_output=False)

    def role_add(self, role: str) -> None:
        self._call("role", "add", role, json_output=False)

    def role_delete(self, role: str) -> None:
        self._call("role", "delete", role, json_output=False)

    def role_grant_prefix(self, role: str, prefix: str) -> None:
        """readwrite on every key that starts with `prefix`, and nothing else."""
        args = ("role", "grant-permission", role, "readwrite", prefix, "--prefix=true")
        self._call(*args, json_output=False)

    def auth_enable(self) -> None:
        self._call("auth", "enable", json_output=False)

    def auth_disable(self) -> None:
        self._call("auth", "disable", json_output=False)

    def view(self) -> ClusterView:
        """The member list, with health and leader taken from the started members' status."""
        view = self.member_list()
        client_urls = [url for m in view.members if m.started for url in m.client_urls[:1]]
        statuses = self.endpoint_status(client_urls)
        healthy = frozenset(s.member_id for s in statuses)
        leader = next((s.leader_id for s in statuses if s.leader_id != "0"), None)
        indexes = tuple(sorted((s.member_id, s.raft_index) for s in statuses))
        releases = tuple(sorted((s.member_id, s.version) for s in statuses if s.version))
        return ClusterView(
            view.cluster_id,
            view.members,
            healthy_ids=healthy,
            leader_id=leader,
            raft_indexes=indexes,
            releases=releases,
        )


def _by_scheme(endpoints: Sequence[str]) -> list[list[str]]:
    """Endpoints grouped by scheme, the larger group first (it more likely holds a quorum)."""
    groups: dict[str, list[str]] = {}
    for endpoint in endpoints:
        groups.setdefault(endpoint.split("://", 1)[0], []).append(endpoint)
    return sorted(groups.values(), key=len, reverse=True)


def _by_name(member: Member) -> tuple[str, str]:
    return (member.name or "~", member.id)


def _status(entry: dict) -> EndpointStatus:
    status = entry["Status"]
    header = status["header"]
    return EndpointStatus(
        endpoint=entry["Endpoint"],
        member_id=member_id_hex(header["member_id"]),
        leader_id=member_id_hex(status.get("leader", 0)),
        version=status.get("version", ""),
        db_size=int(status.get("dbSize", 0)),
        db_size_in_use=int(status.get("dbSizeInUse", 0)),
        raft_term=int(status.get("raftTerm", 0)),
        raft_index=int(status.get("raftIndex", 0)),
        revision=int(header.get("revision", 0)),
        is_learner=bool(status.get("isLearner", False)),
        errors=tuple(str(e) for e in status.get("errors") or ()),
    )
