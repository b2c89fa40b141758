"""JSON shapes shared by the REST endpoints."""

from __future__ import annotations

from typing import Any

from assetfiles.model import Content, ms_to_iso


def content_json(content: Content) -> dict[str, Any]:
    creator = content.creator
    return {
        "id": content.id,
        "name": content.name,
        "contentType": content.content_type,
        "type": content.type,
        "length": content.length,
        "sha256": content.sha256,
        "md5": content.md5,
        "tags": [{"name": name, "value": value} for name, value in content.tags.items()],
        "associations": [{"type": a.type, "id": a.id} for a in content.associations],
        "createdBy": {
            "kind": creator.kind.value,
            "name": creator.name,
            "pid": creator.device.product_id if creator.device else None,
            "identity": creator.device.device_id if creator.device else None,
        },
        "createdAt": ms_to_iso(content.created_at),
        "lastModified": ms_to_iso(content.updated_at),
    }
