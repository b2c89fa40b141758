"""JSON shapes shared by the faces (and the CLI's ``usage --json``)."""

from __future__ import annotations

from typing import Any

from assetfiles.model import Content, ms_to_iso
from assetfiles.service.quotas import Usage


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
        "uploadedVia": content.via,
    }


def usage_json(usage: Usage) -> dict[str, Any]:
    """The shape both ``assetfiles usage --json`` and GraphQL's ``organizationUsage`` show."""
    quota = usage.quota
    return {
        "org": usage.org_id,
        "storedBytes": usage.stored_bytes,
        "contentCount": usage.contents,
        "quota": None
        if quota is None
        else {
            "maxTotalBytes": quota.max_total_bytes,
            "maxFileBytes": quota.max_file_bytes,
            "contentTypes": list(quota.content_types) if quota.content_types is not None else None,
        },
    }
