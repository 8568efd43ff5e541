"""`<prefix>ApiKeys`: the API's continuation-signing key (PK tenant, RK `continuation`), made
once on first use in the API's own table."""

from __future__ import annotations

import base64
import secrets

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

from shared.storage.keys import SIGNING_KEY_ROW
from shared.storage.tables import TableSet, create_table


class ApiKeysTable(TableSet):
    _signing_key: bytes | None = None

    async def api_signing_key(self) -> bytes:
        """The API's key for signing continuation tokens: random, made once per deployment and
        kept where only the app's identity can read it; cached by this store."""
        if self._signing_key is not None:
            return self._signing_key
        table = self._service.get_table_client(f"{self._prefix}ApiKeys")  # shares the service's transport
        try:
            entity = dict(await table.get_entity(self.tenant_id, SIGNING_KEY_ROW))
        except ResourceNotFoundError:
            await create_table(table)
            entity = {
                "PartitionKey": self.tenant_id,
                "RowKey": SIGNING_KEY_ROW,
                "key": base64.b64encode(secrets.token_bytes(32)).decode(),
            }
            try:
                await table.create_entity(entity)
            except ResourceExistsError:  # another instance made it first: use theirs
                entity = dict(await table.get_entity(self.tenant_id, SIGNING_KEY_ROW))
        self._signing_key = base64.b64decode(entity["key"])
        return self._signing_key
