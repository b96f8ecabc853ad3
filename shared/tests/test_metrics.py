"""shared/metrics.py: buffered metrics write what direct updates would have written."""

from prometheus_client import CollectorRegistry, Counter, Histogram

from shared.metrics import BufferedCounter, BufferedHistogram

BUCKETS = (0.001, 0.01, 0.1, 1)
VALUES = (0.0, 0.001, 0.0010001, 0.05, 0.1, 0.99, 1, 7.5)  # on and between the bounds, and above them all


def samples(registry: CollectorRegistry) -> dict:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for m in registry.collect() for s in m.samples}


def without_created(found: dict) -> dict:
    return {key: value for key, value in found.items() if not key[0].endswith("_created")}


def test_a_buffered_histogram_flushes_the_buckets_sum_and_count_observe_would_have_written():
    direct_registry, buffered_registry = CollectorRegistry(), CollectorRegistry()
    direct = Histogram("latency_seconds", "x", ["route"], buckets=BUCKETS, registry=direct_registry)
    buffered = BufferedHistogram(
        Histogram("latency_seconds", "x", ["route"], buckets=BUCKETS, registry=buffered_registry)
    )
    for value in VALUES:
        direct.labels("/a").observe(value)
        buffered.observe(value, "/a")
    direct.labels("/b").observe(0.02)
    buffered.observe(0.02, "/b")
    assert buffered_registry.get_sample_value("latency_seconds_count", {"route": "/a"}) is None  # not yet
    buffered.flush()
    assert without_created(samples(buffered_registry)) == without_created(samples(direct_registry))
    buffered.observe(0.5, "/a")  # a second flush adds to the first
    direct.labels("/a").observe(0.5)
    buffered.flush()
    assert without_created(samples(buffered_registry)) == without_created(samples(direct_registry))


def test_a_buffered_counter_flushes_its_counts():
    registry = CollectorRegistry()
    counter = BufferedCounter(Counter("hits_total", "x", ["status"], registry=registry))
    for status in ("200", "200", "404"):
        counter.inc(status)
    counter.flush()
    assert registry.get_sample_value("hits_total", {"status": "200"}) == 2
    assert registry.get_sample_value("hits_total", {"status": "404"}) == 1
