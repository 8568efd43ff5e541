"""How values are kept in entity properties: JSON documents split across string properties,
and Graph's Int64 counts typed as Int64."""

from __future__ import annotations

import json
from typing import Any

PROPERTY_CHARS = 30_000  # a string property holds 64 KiB of UTF-16: up to 32K characters


def pack_document(document: Any) -> dict[str, str]:
    """JSON in as many string properties as it needs (Azure caps one at 64 KiB)."""
    text = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
    chunks = [text[i : i + PROPERTY_CHARS] for i in range(0, len(text), PROPERTY_CHARS)] or [""]
    return {("document" if index == 0 else f"document{index}"): chunk for index, chunk in enumerate(chunks)}


def unpack_document(entity: dict[str, Any]) -> Any:
    parts = [entity["document"]]
    index = 1
    while f"document{index}" in entity:
        parts.append(entity[f"document{index}"])
        index += 1
    return json.loads("".join(parts))


def int64(value: int) -> Any:
    from azure.data.tables import EdmType, EntityProperty

    # Graph's counts are Int64; the SDK refuses Python ints of 2**31 and more unless typed.
    return EntityProperty(value, EdmType.INT64)


def number(value: Any) -> int:
    """An Int64 property as a plain int (the SDK returns them as EntityProperty)."""
    return int(getattr(value, "value", value) or 0)
