"""Assets and their signals (which device channels feed them). The store of the assets aggregate;
see :mod:`assetfiles.store.sql`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.engine import Connection, Engine, Row

from assetfiles.model import Asset, ChannelId, DeviceRef, Signal, now_ms
from assetfiles.store.schema import assets, signals
from assetfiles.store.sql import escape_like
from assetfiles.store.threads import in_thread


class AssetStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @in_thread
    def upsert_asset(self, asset: Asset) -> None:
        """Create or replace an asset and its signals in one transaction."""
        now = now_ms()
        values = {
            "name": asset.name,
            "description": asset.description,
            "meta": json.dumps(asset.meta),
            "updated_at": now,
        }
        where = and_(assets.c.org_id == asset.org_id, assets.c.id == asset.id)
        with self.engine.begin() as conn:
            if conn.scalar(select(assets.c.id).where(where)) is None:
                conn.execute(
                    insert(assets).values(org_id=asset.org_id, id=asset.id, created_at=now, **values)
                )
            else:
                conn.execute(update(assets).where(where).values(**values))
            conn.execute(
                delete(signals).where(signals.c.org_id == asset.org_id, signals.c.asset_id == asset.id)
            )
            if asset.signals:
                conn.execute(
                    insert(signals),
                    [
                        {
                            "org_id": asset.org_id,
                            "asset_id": asset.id,
                            "id": signal.id,
                            "position": position,
                            "name": signal.name,
                            "product_id": signal.channel.device.product_id,
                            "device_id": signal.channel.device.device_id,
                            "channel": signal.channel.channel,
                            "properties": json.dumps(signal.properties),
                        }
                        for position, signal in enumerate(asset.signals)
                    ],
                )

    @in_thread
    def get_asset(self, org_id: str, asset_id: str) -> Asset | None:
        with self.engine.connect() as conn:
            query = select(assets).where(assets.c.org_id == org_id, assets.c.id == asset_id)
            found = self._with_signals(conn, org_id, conn.execute(query).all())
            return found[0] if found else None

    @in_thread
    def asset_exists(self, org_id: str, asset_id: str) -> bool:
        with self.engine.connect() as conn:
            query = select(assets.c.id).where(assets.c.org_id == org_id, assets.c.id == asset_id)
            return conn.scalar(query) is not None

    @in_thread
    def feeding_devices(self, org_id: str, asset_id: str) -> frozenset[DeviceRef]:
        """The devices whose channels feed the asset's signals (empty for an unknown asset)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(signals.c.product_id, signals.c.device_id)
                .where(signals.c.org_id == org_id, signals.c.asset_id == asset_id)
                .distinct()
            )
            return frozenset(DeviceRef(row.product_id, row.device_id) for row in rows)

    @in_thread
    def assets_fed_by(self, org_id: str, device: DeviceRef) -> list[str]:
        """The ids of the assets whose signals the device's channels feed, in id order."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(signals.c.asset_id)
                .where(
                    signals.c.org_id == org_id,
                    signals.c.product_id == device.product_id,
                    signals.c.device_id == device.device_id,
                )
                .distinct()
                .order_by(signals.c.asset_id)
            )
            return [row.asset_id for row in rows]

    @in_thread
    def list_assets(
        self, org_id: str, text: str | None, ids: Sequence[str] | None, limit: int, offset: int
    ) -> list[Asset]:
        conditions = _asset_conditions(org_id, text, ids)
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(assets)
                .where(*conditions)
                .order_by(assets.c.name, assets.c.id)
                .limit(limit)
                .offset(offset)
            ).all()
            return self._with_signals(conn, org_id, rows)

    @in_thread
    def count_assets(self, org_id: str, text: str | None, ids: Sequence[str] | None) -> int:
        with self.engine.connect() as conn:
            return (
                conn.scalar(
                    select(func.count()).select_from(assets).where(*_asset_conditions(org_id, text, ids))
                )
                or 0
            )

    def _with_signals(self, conn: Connection, org_id: str, rows: Sequence[Row[Any]]) -> list[Asset]:
        ids = [row.id for row in rows]
        by_asset: dict[str, list[Signal]] = {asset_id: [] for asset_id in ids}
        if ids:
            signal_rows = conn.execute(
                select(signals)
                .where(signals.c.org_id == org_id, signals.c.asset_id.in_(ids))
                .order_by(signals.c.asset_id, signals.c.position)
            )
            for sig in signal_rows:
                channel = ChannelId(DeviceRef(sig.product_id, sig.device_id), sig.channel)
                by_asset[sig.asset_id].append(Signal(sig.id, sig.name, channel, json.loads(sig.properties)))
        return [
            Asset(
                org_id=row.org_id,
                id=row.id,
                name=row.name,
                description=row.description,
                meta=json.loads(row.meta),
                signals=tuple(by_asset[row.id]),
            )
            for row in rows
        ]

    # -- contents ----------------------------------------------------------------------------


def _asset_conditions(org_id: str, text: str | None, ids: Sequence[str] | None) -> list[Any]:
    """An organization's assets, those named in ``ids``, whose name or id contains ``text``."""
    conditions: list[Any] = [assets.c.org_id == org_id]
    if ids is not None:
        conditions.append(assets.c.id.in_(ids))
    if text:
        pattern = f"%{escape_like(text.lower())}%"
        conditions.append(
            or_(
                func.lower(assets.c.name).like(pattern, escape="\\"),
                func.lower(assets.c.id).like(pattern, escape="\\"),
            )
        )
    return conditions
