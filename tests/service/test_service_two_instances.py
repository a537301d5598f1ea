"""A value made or rotated on one instance works at once on another that shares the store
(the other's filter of stored digests learns it from the change feed)."""

from __future__ import annotations

from service_harness import build_harness

from apitokens.storage.port import Store


def test_a_rotated_value_works_at_once_on_another_instance(store: Store) -> None:
    one, other = build_harness(store), build_harness(store)
    admin = one.login(one.bootstrap().value)
    made = one.create(admin, "moving")
    assert other.login(made.value).token.id == made.token.id
    rotated = one.tokens.rotate(admin, made.token.id, None)
    assert other.login(rotated.value).token.id == made.token.id
