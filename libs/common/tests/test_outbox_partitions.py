from aiokafka import partitioner
from hypothesis import given
from hypothesis import strategies as st
from krousar_common import outbox


@given(st.lists(st.binary(max_size=80), max_size=40))
def test_the_relay_hashes_keys_as_kafka_does(keys: list[bytes]) -> None:
    assert outbox.murmur2(keys) == [partitioner.murmur2(k) for k in keys]


def test_household_ids_hash_as_kafka_does() -> None:
    keys = [f"{i:08x}-6b1a-4e51-9d0c-4b7279757361".encode() for i in range(2000)]
    assert outbox.murmur2(keys) == [partitioner.murmur2(k) for k in keys]
