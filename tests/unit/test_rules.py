"""Rules against in-memory stores (tests/unit/fakes.py): no database, no socket, no server.

And the faces' mappings of domain errors: statuses, the token service's codes, argument paths.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import replace
from typing import Any, TypeVar

import pytest

from assetfiles.errors import (
    AssetfilesError,
    BadInput,
    Conflict,
    FileTooLarge,
    Forbidden,
    NotFound,
    QuotaFull,
    TokenExpired,
    TokenRefusal,
    TokenRefused,
    TypeNotAccepted,
    Unauthenticated,
    UploadRaced,
    refuses_credential,
)
from assetfiles.model import Asset, ChannelId, DeviceRef, Permission, Principal, Quota, Signal
from assetfiles.server.enos import TOKEN_SERVICE_CODES
from assetfiles.server.faces import http_status
from assetfiles.server.graphql.paths import argument_path, in_arguments
from assetfiles.service.access import Access
from assetfiles.service.assets import AssetService
from assetfiles.service.provisioning import Provisioning
from assetfiles.service.quotas import Quotas
from assetfiles.service.secrets import token_hash
from tests.unit.fakes import FakeAssets, FakePrincipals, FakeQuotas

T = TypeVar("T")
KEY = b"k" * 32


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def reader(org_id: str) -> Principal:
    return Principal(org_id, "reader", frozenset({Permission.READ}))


# -- quotas ---------------------------------------------------------------------------------------


def quotas_for(org: str, quota: Quota | None, stored: int = 0) -> Quotas:
    principals, records = FakePrincipals(), FakeQuotas()
    principals.organizations[org] = org
    if quota is not None:
        records.quotas[org] = quota
    records.stored[org] = (stored, 1)
    return Quotas(records, principals)


def test_a_quota_admits_up_to_the_smaller_of_its_file_and_remaining_limits() -> None:
    quotas = quotas_for("o", Quota(max_total_bytes=1000, max_file_bytes=400), stored=800)
    assert run(quotas.admit("o", "text/csv", None)).stream_limit == 200
    assert run(quotas.admit("o", "text/csv", 150)).stream_limit == 200
    with pytest.raises(QuotaFull):
        run(quotas.admit("o", "text/csv", 201))
    with pytest.raises(FileTooLarge):
        run(quotas.admit("o", "text/csv", 401))
    assert run(quotas_for("o", None).admit("o", "text/csv", 10**12)).stream_limit is None


def test_a_quota_refuses_types_it_does_not_list_by_name() -> None:
    quotas = quotas_for("o", Quota(content_types=("image/*", "application/pdf")))
    assert run(quotas.admit("o", "image/png", 5)).quota is not None
    with pytest.raises(TypeNotAccepted) as refused:
        run(quotas.admit("o", "text/csv", 5))
    assert refused.value.field == "contentType" and "image/*, application/pdf" in refused.value.message


def test_a_quota_is_set_only_on_a_known_organization_and_within_bounds() -> None:
    quotas = quotas_for("o", None)
    with pytest.raises(BadInput) as unknown:
        run(quotas.set("nobody", Quota(max_total_bytes=1)))
    assert unknown.value.field == "org"
    with pytest.raises(BadInput) as negative:
        run(quotas.set("o", Quota(max_file_bytes=-1)))
    assert negative.value.field == "quota.max_file_bytes"
    run(quotas.set("o", Quota(max_total_bytes=5)))
    assert run(quotas.get("o")) == Quota(max_total_bytes=5)
    run(quotas.set("o", None))
    assert run(quotas.get("o")) is None


# -- assets ---------------------------------------------------------------------------------------


def test_assets_are_seen_only_in_their_organization_and_searched_by_name_or_id() -> None:
    channel = ChannelId(DeviceRef("p", "d"), "temp")
    assets = AssetService(
        FakeAssets(
            Asset("o-a", "a-pump", "Pump", signals=(Signal("s", "Temp", channel, {}),)),
            Asset("o-a", "a-tank", "Tank"),
            Asset("o-b", "b-pump", "Pump of B"),
        )
    )
    assert run(assets.get(reader("o-a"), "a-pump")).name == "Pump"
    with pytest.raises(NotFound):
        run(assets.get(reader("o-a"), "b-pump"))  # foreign looks like unknown
    found = run(assets.list(reader("o-a"), text="PUMP", ids=None, limit=None, offset=None))
    assert [asset.id for asset in found] == ["a-pump"]
    assert run(assets.count(reader("o-a"), text=None, ids=["a-tank", "b-pump", None])) == 1


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"offset": -1}, "offset"),
        ({"text": "x" * 300}, "text"),
    ],
)
def test_bad_asset_listings_name_their_field_in_the_domains_words(
    arguments: dict[str, Any], field: str
) -> None:
    assets = AssetService(FakeAssets())
    wanted = {"text": None, "ids": None, "limit": None, "offset": None, **arguments}
    with pytest.raises(BadInput) as refused:
        run(assets.list(reader("o"), **wanted))
    assert refused.value.field == field and refused.value.message.startswith(f"{field}: ")


def test_listing_assets_needs_the_read_permission() -> None:
    nobody = Principal("o", "none", frozenset())
    with pytest.raises(Forbidden):
        run(AssetService(FakeAssets()).list(nobody, text=None, ids=None, limit=None, offset=None))


# -- tokens ---------------------------------------------------------------------------------------


def test_tokens_are_stored_as_keyed_hashes_and_a_used_secret_is_a_conflict() -> None:
    principals = FakePrincipals()
    principals.organizations["o"] = "O"
    provisioning = Provisioning(principals, key=KEY)
    secret = run(provisioning.create_token("o", "ci", "tok-0123456789abcdef", [Permission.READ]))
    stored, _ = principals.tokens[("o", "ci")]
    assert stored == token_hash(secret, KEY) and secret not in stored
    with pytest.raises(Conflict):
        run(provisioning.create_token("o", "ci", None, [Permission.READ]))  # name taken
    with pytest.raises(Conflict) as reused:
        run(provisioning.put_token("o", "other", secret, [Permission.READ]))
    assert reused.value.field == "token.secret"
    with pytest.raises(NotFound):
        run(provisioning.put_token("nobody", "x", None, [Permission.READ]))


def test_revoked_expired_and_unknown_tokens_get_one_answer_and_uses_are_written_once() -> None:
    principals = FakePrincipals()
    principals.organizations["o"] = "O"
    provisioning = Provisioning(principals, key=KEY)
    access = Access(principals, key=KEY)
    good = run(provisioning.create_token("o", "good", None, [Permission.READ, Permission.WRITE]))
    revoked = run(provisioning.create_token("o", "revoked", None, [Permission.READ]))
    run(provisioning.revoke_token("o", "revoked"))
    expired = run(provisioning.create_token("o", "expired", None, [Permission.READ], expires_in=1))
    stored, record = principals.tokens[("o", "expired")]
    principals.tokens[("o", "expired")] = (stored, replace(record, expires_at=1))
    principal = run(access.token_principal(good))
    assert principal.org_id == "o" and principal.permissions == {Permission.READ, Permission.WRITE}
    answers = set()
    for secret in (revoked, expired, "tok-nobody-has-this-one"):
        with pytest.raises(Unauthenticated) as refused:
            run(access.token_principal(secret))
        answers.add(refused.value.message)
    assert len(answers) == 1
    run(access.token_principal(good))
    assert len(principals.uses) == 1  # within the resolution, a use is written once
    with pytest.raises(NotFound):
        run(provisioning.revoke_token("o", "revoked"))  # already revoked


# -- the faces' mappings --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (BadInput("x"), 400),
        (Unauthenticated("x"), 401),
        (TokenExpired("x"), 401),
        (Forbidden("x"), 403),
        (NotFound("x"), 404),
        (UploadRaced("x"), 409),
        (FileTooLarge("x"), 413),
        (TypeNotAccepted("x"), 415),
        (QuotaFull("x"), 507),
        (TokenRefused("x", reason=TokenRefusal.MALFORMED), 400),
        (TokenRefused("x", reason=TokenRefusal.BAD_SIGNATURE), 401),
        (AssetfilesError("x"), 500),
    ],
)
def test_every_domain_error_has_one_http_status(error: AssetfilesError, status: int) -> None:
    assert http_status(error) == status
    assert refuses_credential(error) == (status == 401)


def test_every_token_refusal_has_the_token_services_documented_code() -> None:
    assert set(TOKEN_SERVICE_CODES) == set(TokenRefusal)
    assert TOKEN_SERVICE_CODES[TokenRefusal.BAD_SIGNATURE] == 1003
    assert TOKEN_SERVICE_CODES[TokenRefusal.EMPTY] == 1202


@pytest.mark.parametrize(
    ("root", "field", "path"),
    [
        ("assetContents", "orderBy", "filters.orderBy"),
        ("assetContents", "tags[2].name", "filters.tags[2].name"),
        ("assetContents", "limit", "pagination.limit"),
        ("assetContents", "devices[0]", "devices[0]"),
        ("createContentUpload", "sha256", "input.sha256"),
        ("createContentUpload", "associations[0].type", "input.associations[0].type"),
        ("createContentUpload", "expiresIn", "expiresIn"),
        ("deviceAssetContent", "id", "input.id"),
        ("content", "id", "id"),
        (None, "name", "name"),
    ],
)
def test_graphql_callers_are_told_the_argument_path_they_sent(
    root: str | None, field: str, path: str
) -> None:
    assert argument_path(root, field) == path
    message, mapped = in_arguments(root, f"{field}: must be better", field)
    assert (message, mapped) == (f"{path}: must be better", path)
    assert in_arguments(root, "asset 'x' not found", field) == ("asset 'x' not found", path)


def test_applying_the_same_secret_again_is_no_change_and_no_audit_event() -> None:
    principals, recorded = FakePrincipals(), []
    principals.organizations["o"] = "O"

    class Recorder:
        async def record(self, action: str, **_: Any) -> None:
            recorded.append(action)

    provisioning = Provisioning(principals, Recorder(), key=KEY)  # type: ignore[arg-type]
    secret = "tok-fixture-0123456789"
    assert run(provisioning.put_token("o", "ci", secret, [Permission.READ])).created
    again = run(provisioning.put_token("o", "ci", secret, [Permission.READ]))
    assert not again.created and not again.changed
    replaced = run(provisioning.put_token("o", "ci", "tok-another-0123456789", [Permission.READ]))
    assert replaced.changed
    assert recorded == ["token.created", "token.secret_replaced"]


def test_a_device_secret_is_checked_slowly_once_then_by_its_keyed_digest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first request of a device runs scrypt and keeps the secret's keyed digest; later ones
    match the digest without scrypt. A wrong secret still takes the slow path and is refused, a
    replaced secret drops the digest, and a digest is useless without the server key or on
    another device's row."""
    from assetfiles.service import access as access_module
    from assetfiles.service.secrets import device_digest, hash_device_secret, verify_device_secret

    scrypts: list[str] = []

    def counting(secret: str, stored: str) -> bool:
        scrypts.append(secret)
        return verify_device_secret(secret, stored)

    monkeypatch.setattr(access_module, "verify_device_secret", counting)
    principals = FakePrincipals()
    device, other = DeviceRef("p1", "d1"), DeviceRef("p1", "d2")
    run(principals.upsert_device("o-1", device, hash_device_secret("first-secret-0123")))
    run(principals.upsert_device("o-1", other, hash_device_secret("other-secret-0123")))
    access = Access(principals, key=KEY)

    for _ in range(3):
        assert run(access.device_principal(device, "first-secret-0123")).device == device
    assert scrypts == ["first-secret-0123"]  # the slow check once, then the digest
    stored = principals.device_digests[("o-1", device)]
    assert stored == device_digest("first-secret-0123", "o-1", "p1.d1", KEY)
    assert stored != device_digest("first-secret-0123", "o-1", "p1.d1", b"another key " * 3)

    with pytest.raises(Unauthenticated):
        run(access.device_principal(device, "wrong-secret-0123"))
    assert scrypts[-1] == "wrong-secret-0123"  # a miss costs what it did: no cheap guessing

    principals.device_digests[("o-1", other)] = stored  # a digest copied to another device's row
    with pytest.raises(Unauthenticated):
        run(access.device_principal(other, "first-secret-0123"))

    run(principals.upsert_device("o-1", device, hash_device_secret("second-secret-0123")))
    assert ("o-1", device) not in principals.device_digests
    with pytest.raises(Unauthenticated):
        run(access.device_principal(device, "first-secret-0123"))
    assert run(access.device_principal(device, "second-secret-0123")).org_id == "o-1"
