"""What a failed etcdctl (or etcdutl) call says: which call, its exit code, etcd's reason,
and the handful of answers the charm acts on (retry, already done, gone)."""

from __future__ import annotations

from collections.abc import Sequence


class EtcdctlError(Exception):
    """An etcdctl call failed; the message says which call and what etcd answered."""

    def __init__(self, args: Sequence[str], exit_code: int, stderr: str, stdout: str = ""):
        self.args_used = list(args)
        self.exit_code = exit_code
        self.stderr = stderr
        self.stdout = stdout
        super().__init__(f"etcdctl {' '.join(args)} failed ({exit_code}): {self.reason}")

    @property
    def reason(self) -> str:
        """The last `Error:` line etcdctl printed, or its last line."""
        lines = [line.strip() for line in self.stderr.strip().splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("Error:")]
        return (errors or lines or ["no output"])[-1].removeprefix("Error: ")

    @property
    def learner_not_in_sync(self) -> bool:
        return "can only promote a learner member which is in sync with leader" in self.stderr

    @property
    def cluster_unhealthy(self) -> bool:
        """etcd's strict reconfig check: the leader must have seen every voter for 5 s."""
        return "unhealthy cluster" in self.stderr

    @property
    def member_not_found(self) -> bool:
        return "member not found" in self.stderr

    @property
    def compacted(self) -> bool:
        return "required revision has been compacted" in self.stderr

    @property
    def future_revision(self) -> bool:
        return "required revision is a future revision" in self.stderr

    @property
    def timed_out(self) -> bool:
        return "context deadline exceeded" in self.stderr or "request timed out" in self.stderr

    @property
    def not_found(self) -> bool:
        """A user or role that does not exist."""
        return "not found" in self.stderr

    @property
    def already_exists(self) -> bool:
        return "already exists" in self.stderr

    @property
    def auth_failed(self) -> bool:
        return "authentication failed" in self.stderr

    @property
    def peer_url_exists(self) -> bool:
        """member add of a peer URL already listed: an earlier try went through, or another
        unit's hook added the same joiner at the same time (etcd then may answer either)."""
        return any(
            text in self.stderr
            for text in ("Peer URLs already exists", "member ID already exist", "ID exists")
        )

    @property
    def member_stopping(self) -> bool:
        """The member asked is stopping: it has just applied its own removal (two units leaving
        at once), or its pod is going. Another member will answer the retry."""
        return "raft: stopped" in self.stderr or "server stopped" in self.stderr

    @property
    def not_a_learner(self) -> bool:
        return "can only promote a learner member" in self.stderr and not self.learner_not_in_sync
