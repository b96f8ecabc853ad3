"""The sampler wrapper: the operator's sampler decides, except for statements and calls outside a trace."""

from opentelemetry import trace
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, Decision, ParentBasedTraceIdRatio, TraceIdRatioBased
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

from shared.sampling import InTracesOnly

TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736


def inside_a_trace():
    parent = SpanContext(TRACE_ID, 0x00F067AA0BA902B7, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    return trace.set_span_in_context(NonRecordingSpan(parent))


def test_a_statement_or_call_outside_any_trace_starts_none():
    decision = InTracesOnly(ALWAYS_ON).should_sample(None, TRACE_ID, "COMMIT;", SpanKind.CLIENT).decision
    assert decision is Decision.DROP


def test_inside_a_trace_and_for_requests_the_configured_sampler_decides():
    sampler = InTracesOnly(ALWAYS_ON)
    assert sampler.should_sample(inside_a_trace(), TRACE_ID, "SELECT", SpanKind.CLIENT).decision.is_sampled()
    assert sampler.should_sample(None, TRACE_ID, "POST /orders", SpanKind.SERVER).decision.is_sampled()
    never = InTracesOnly(TraceIdRatioBased(0))
    assert not never.should_sample(None, TRACE_ID, "POST /orders", SpanKind.SERVER).decision.is_sampled()
    assert "TraceIdRatioBased" in never.get_description()


def test_a_dropped_parent_stands_in_for_its_children_only_under_a_sampler_that_follows_parents():
    # parentbased_* drop a dropped parent's children, so no decision is asked; a sampler that ignores
    # parents (traceidratio, always_on) might keep them, so it is asked
    assert InTracesOnly(ParentBasedTraceIdRatio(0.1)).follows_parent
    assert not InTracesOnly(TraceIdRatioBased(0.1)).follows_parent
    assert not InTracesOnly(ALWAYS_ON).follows_parent
