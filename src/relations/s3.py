"""The `s3-credentials` relation (interface s3, the requirer side) in Juju: what this charm
asks of the provider, and what the provider sent, read field by field. Thin: the rules live in
core/backups.py. Wire format, charm-relation-interfaces interfaces/s3 (app databags only):

v1 (s3-integrator track 2):
  requirer: lib-version, requested-secrets ["access-key", "secret-key"] (bucket and path are
            optional requests a provider may ignore; this charm asks for none)
  provider: secret-extra (a Juju secret id; content access-key, secret-key), bucket, path,
            endpoint, region, s3-uri-style, storage-class, tls-ca-chain, s3-api-version,
            attributes, lib-version
v0 (s3-integrator track 1): the provider sends access-key and secret-key in the databag.
"""

from __future__ import annotations

import logging

import ops

import literals as k
from core.backups import LIB_VERSION, REQUESTED_SECRETS, InvalidS3Data, S3Settings, parse_settings

logger = logging.getLogger(__name__)


class S3Relation:
    """The one s3-credentials relation of this application, if related."""

    def __init__(self, model: ops.Model, app: ops.Application):
        self.model = model
        self.app = app

    @property
    def relation(self) -> ops.Relation | None:
        return self.model.get_relation(k.S3_RELATION)

    def request(self) -> None:
        """The leader's requirer fields (idempotent: written only when they differ)."""
        relation = self.relation
        if relation is None:
            return
        bag = relation.data[self.app]
        wanted = {k.S3_LIB_VERSION: LIB_VERSION, k.S3_REQUESTED_SECRETS: REQUESTED_SECRETS}
        if any(bag.get(key) != value for key, value in wanted.items()):
            bag.update(wanted)
            logger.info("decision: s3-credentials request written (%s)", sorted(wanted))

    def settings(self) -> S3Settings | None:
        """What the provider sent, checked; None when unrelated or not sent yet. Garbage raises
        InvalidS3Data naming the field (and is logged)."""
        relation = self.relation
        if relation is None or relation.app is None:
            return None
        data = dict(relation.data[relation.app])
        try:
            return parse_settings(data, self._secret(data.get(k.S3_SECRET_EXTRA)))
        except InvalidS3Data as error:
            logger.warning("refusing the s3-credentials data: %s", error)
            raise

    def problem(self) -> str | None:
        """Why backups to S3 cannot run with what the provider sent, or None."""
        try:
            self.settings()
        except InvalidS3Data as error:
            return str(error)
        return None

    def _secret(self, secret_id: str | None) -> dict[str, str] | None:
        if not secret_id:
            return None
        try:
            return self.model.get_secret(id=secret_id).get_content(refresh=True)
        except (ops.SecretNotFoundError, ops.ModelError) as error:
            logger.info("the s3 secret %s is not readable yet: %s", secret_id, error)
            return None
