"""EtcdOptions validation and the rendered etcd config file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from state.config import GIB, MIB, EtcdOptions, InvalidConfig
from workload.render import MemberConfig, render_config

DEFAULTS = {
    "heartbeat-interval": 100,
    "election-timeout": 1000,
    "snapshot-count": 10_000,
    "quota-backend-bytes": 2 * GIB,
    "max-request-bytes": int(1.5 * MIB),
    "auto-compaction-mode": "periodic",
    "auto-compaction-retention": "1h",
    "log-level": "info",
    "backup-schedule": "",
    "backup-retention": "gfs",
}


def config(**changes) -> dict[str, object]:
    return {**DEFAULTS, **{key.replace("_", "-"): value for key, value in changes.items()}}


class TestValidation:
    def test_config_yaml_defaults_are_valid(self):
        options = EtcdOptions.from_charm_config(config())
        assert options == EtcdOptions()
        assert options.election_timeout == 1000
        assert options.quota_backend_bytes == 2 * GIB

    def test_empty_config_takes_the_defaults(self):
        assert EtcdOptions.from_charm_config({}) == EtcdOptions.from_charm_config(config())

    def test_backup_options_are_not_etcds(self):
        """The config digest covers etcd_json: a backup option restarts no member, and the
        digest of a deployment from before these options existed stays the same."""
        plain = EtcdOptions()
        scheduled = EtcdOptions.from_charm_config(
            config(backup_schedule="0 3 * * *", backup_retention="last=3")
        )
        assert scheduled.backup_schedule == "0 3 * * *"
        assert scheduled.etcd_json() == plain.etcd_json()
        assert "backup" not in plain.etcd_json()

    def test_unknown_options_are_ignored(self):
        assert EtcdOptions.from_charm_config(config(other="x")) == EtcdOptions()

    def test_values_are_read_by_their_juju_names(self):
        options = EtcdOptions.from_charm_config(
            config(
                heartbeat_interval=250,
                election_timeout=2500,
                auto_compaction_mode="revision",
                auto_compaction_retention="1000",
                log_level="debug",
            )
        )
        assert options.heartbeat_interval == 250
        assert options.election_timeout == 2500
        assert options.auto_compaction_mode == "revision"
        assert options.auto_compaction_retention == "1000"
        assert options.log_level == "debug"

    @pytest.mark.parametrize(
        "changes, option",
        [
            ({"election_timeout": 499}, "election-timeout"),
            ({"heartbeat_interval": 300, "election_timeout": 1000}, "election-timeout"),
            ({"heartbeat_interval": 0}, "heartbeat-interval"),
            ({"heartbeat_interval": -100}, "heartbeat-interval"),
            ({"election_timeout": 60_000}, "election-timeout"),
            ({"snapshot_count": 0}, "snapshot-count"),
            ({"snapshot_count": -1}, "snapshot-count"),
            ({"quota_backend_bytes": 0}, "quota-backend-bytes"),
            ({"quota_backend_bytes": -1}, "quota-backend-bytes"),
            ({"quota_backend_bytes": 8 * GIB + 1}, "quota-backend-bytes"),
            ({"max_request_bytes": 0}, "max-request-bytes"),
            ({"max_request_bytes": -5}, "max-request-bytes"),
            ({"max_request_bytes": 2 * GIB}, "max-request-bytes"),
            (
                {"quota_backend_bytes": 64 * MIB, "max_request_bytes": 100 * MIB},
                "max-request-bytes",
            ),
            ({"auto_compaction_mode": "hourly"}, "auto-compaction-mode"),
            ({"auto_compaction_retention": "1 hour"}, "auto-compaction-retention"),
            ({"auto_compaction_retention": "h"}, "auto-compaction-retention"),
            ({"auto_compaction_retention": "-1"}, "auto-compaction-retention"),
            ({"auto_compaction_retention": ""}, "auto-compaction-retention"),
            (
                {"auto_compaction_mode": "revision", "auto_compaction_retention": "1h"},
                "auto-compaction-retention",
            ),
            (
                {"auto_compaction_mode": "revision", "auto_compaction_retention": "1.5"},
                "auto-compaction-retention",
            ),
            ({"log_level": "trace"}, "log-level"),
            ({"log_level": "INFO"}, "log-level"),
        ],
    )
    def test_invalid_value_names_the_option(self, changes, option):
        with pytest.raises(InvalidConfig) as caught:
            EtcdOptions.from_charm_config(config(**changes))
        assert option in str(caught.value)

    def test_each_broken_field_is_reported(self):
        with pytest.raises(InvalidConfig) as caught:
            EtcdOptions.from_charm_config(config(snapshot_count=0, log_level="loud"))
        assert "snapshot-count" in str(caught.value)
        assert "log-level" in str(caught.value)

    @pytest.mark.parametrize(
        "heartbeat, election", [(100, 500), (10, 50), (10_000, 50_000)], ids=str
    )
    def test_election_timeout_of_exactly_five_heartbeats_is_allowed(self, heartbeat, election):
        options = EtcdOptions.from_charm_config(
            config(heartbeat_interval=heartbeat, election_timeout=election)
        )
        assert options.election_timeout == election

    def test_largest_quota_is_allowed(self):
        assert EtcdOptions.from_charm_config(config(quota_backend_bytes=8 * GIB))

    @pytest.mark.parametrize("retention", ["1h", "30m", "90s", "1h30m", "1.5h", "500ms", "0", "24"])
    def test_periodic_retention_accepts_durations_and_hours(self, retention):
        options = EtcdOptions.from_charm_config(config(auto_compaction_retention=retention))
        assert options.auto_compaction_retention == retention

    @pytest.mark.parametrize("retention", ["0", "1000"])
    def test_revision_retention_accepts_counts(self, retention):
        options = EtcdOptions.from_charm_config(
            config(auto_compaction_mode="revision", auto_compaction_retention=retention)
        )
        assert options.auto_compaction_retention == retention

    def test_invalid_config_is_a_value_error(self):
        with pytest.raises(ValueError):
            EtcdOptions.from_charm_config(config(log_level="nope"))


# ---- rendering ---------------------------------------------------------------------------------


def member_config(version: tuple[int, int] = (3, 5), **changes) -> MemberConfig:
    fields = {
        "name": "etcd-k8s-1",
        "data_dir": "/var/lib/etcd/data",
        "peer_url": "http://etcd-k8s-1.etcd-k8s-endpoints.m.svc.cluster.local:2380",
        "client_url": "http://etcd-k8s-1.etcd-k8s-endpoints.m.svc.cluster.local:2379",
        "initial_cluster": "etcd-k8s-0=http://e0:2380,etcd-k8s-1=http://e1:2380",
        "initial_cluster_state": "existing",
        "initial_cluster_token": "etcd-k8s-0123456789abcdef",
        "etcd_version": version,
        **changes,
    }
    return MemberConfig(**fields)


def rendered(version: tuple[int, int] = (3, 5), options: EtcdOptions | None = None, **changes):
    text = render_config(member_config(version, **changes), options or EtcdOptions())
    return text, yaml.safe_load(text)


class TestRender:
    def test_member_fields(self):
        _, conf = rendered()
        assert conf["name"] == "etcd-k8s-1"
        assert conf["data-dir"] == "/var/lib/etcd/data"
        assert conf["initial-advertise-peer-urls"] == member_config().peer_url
        assert conf["advertise-client-urls"] == member_config().client_url
        assert conf["initial-cluster"] == "etcd-k8s-0=http://e0:2380,etcd-k8s-1=http://e1:2380"
        assert conf["initial-cluster-state"] == "existing"
        assert conf["initial-cluster-token"] == "etcd-k8s-0123456789abcdef"

    def test_fixed_fields(self):
        _, conf = rendered()
        assert conf["listen-peer-urls"] == "http://0.0.0.0:2380"
        assert conf["listen-client-urls"] == "http://0.0.0.0:2379"
        assert conf["listen-metrics-urls"] == "http://0.0.0.0:2381"  # plain http, TLS or not
        assert conf["strict-reconfig-check"] is True
        assert conf["log-outputs"] == ["stderr"]

    def test_options_keep_their_types(self):
        options = EtcdOptions.from_charm_config(
            config(
                heartbeat_interval=200,
                election_timeout=2000,
                snapshot_count=5000,
                quota_backend_bytes=4 * GIB,
                max_request_bytes=2 * MIB,
                auto_compaction_mode="revision",
                auto_compaction_retention="1000",
                log_level="warn",
            )
        )
        _, conf = rendered(options=options)
        assert conf["heartbeat-interval"] == 200
        assert conf["election-timeout"] == 2000
        assert conf["snapshot-count"] == 5000
        assert conf["quota-backend-bytes"] == 4 * GIB
        assert conf["max-request-bytes"] == 2 * MIB
        assert conf["auto-compaction-mode"] == "revision"
        # A string even though it looks like a number: etcd's field is a string.
        assert conf["auto-compaction-retention"] == "1000"
        assert conf["log-level"] == "warn"

    def test_new_cluster_state(self):
        _, conf = rendered(initial_cluster_state="new")
        assert conf["initial-cluster-state"] == "new"

    def test_strings_that_yaml_would_misread_stay_strings(self):
        _, conf = rendered(initial_cluster_token="yes: no # 'x' \"y\" <&>", name="0123")
        assert conf["initial-cluster-token"] == "yes: no # 'x' \"y\" <&>"
        assert conf["name"] == "0123"

    def test_etcd_3_4_uses_zap(self):
        text, conf = rendered((3, 4))
        assert "logger: zap" in text
        assert conf["logger"] == "zap"
        assert "max-learners" not in conf

    @pytest.mark.parametrize("version", [(3, 5), (3, 6)])
    def test_later_versions_have_no_logger(self, version):
        text, conf = rendered(version)
        assert "logger" not in conf
        assert "logger:" not in text

    def test_etcd_3_5_has_no_max_learners(self):
        _, conf = rendered((3, 5))
        assert "max-learners" not in conf

    def test_etcd_3_6_limits_learners(self):
        _, conf = rendered((3, 6))
        assert conf["max-learners"] == 1

    def test_default_member_version_is_3_5(self):
        assert MemberConfig("n", "d", "p", "c", "i", "new", "t").etcd_version == (3, 5)


class TestLoadThroughOps:
    """`config.load` goes through ops' `CharmBase.load_config`, with the charm's config.yaml:
    what the operator sets must reach the options, and a broken rule must name the option as
    the operator typed it."""

    @staticmethod
    def loaded(juju_config: dict[str, object]) -> EtcdOptions | InvalidConfig:
        import ops
        from ops import testing

        from state import config as charm_config

        seen: list[EtcdOptions | InvalidConfig] = []

        class Charm(ops.CharmBase):
            def __init__(self, framework: ops.Framework):
                super().__init__(framework)
                framework.observe(self.on.config_changed, self._on_config_changed)

            def _on_config_changed(self, _: ops.ConfigChangedEvent) -> None:
                try:
                    seen.append(charm_config.load(self))
                except InvalidConfig as error:
                    seen.append(error)

        root = Path(__file__).resolve().parents[2]
        ctx = testing.Context(
            Charm,
            meta={"name": "etcd-k8s"},
            config=yaml.safe_load((root / "config.yaml").read_text()),
        )
        ctx.run(ctx.on.config_changed(), testing.State(config=juju_config))
        return seen[0]

    def test_every_option_set_reaches_the_options(self):
        changed = {
            "heartbeat-interval": 250,
            "election-timeout": 2500,
            "snapshot-count": 500,
            "quota-backend-bytes": 16 * MIB,
            "max-request-bytes": 4096,
            "auto-compaction-mode": "revision",
            "auto-compaction-retention": "1000",
            "log-level": "debug",
            "backup-schedule": "0 */6 * * *",
            "backup-retention": "gfs,last=5,max-age=60d",
        }
        assert set(changed) == set(DEFAULTS)
        options = self.loaded(changed)
        assert options == EtcdOptions.from_charm_config(changed)
        assert isinstance(options, EtcdOptions)
        assert options.model_dump() == {k.replace("-", "_"): v for k, v in changed.items()}

    def test_unset_options_take_config_yaml_defaults(self):
        assert self.loaded({}) == EtcdOptions()

    @pytest.mark.parametrize(
        "bad, option",
        [
            ({"election-timeout": 40}, "election-timeout"),
            ({"quota-backend-bytes": 1024}, "quota-backend-bytes"),
            ({"auto-compaction-mode": "weekly"}, "auto-compaction-mode"),
            ({"backup-schedule": "every day"}, "backup-schedule"),
            ({"backup-schedule": "61 * * * *"}, "backup-schedule"),
            ({"backup-retention": "last=0"}, "backup-retention"),
            ({"backup-retention": ""}, "backup-retention"),
        ],
    )
    def test_a_broken_rule_names_the_option(self, bad, option):
        error = self.loaded(bad)
        assert isinstance(error, InvalidConfig)
        assert str(error).startswith(f"{option}: "), error
