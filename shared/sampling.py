"""Which spans may start a trace: the OTEL_TRACES_SAMPLER the operator chose, except that a database
statement or an outgoing HTTP call outside any request, publish or consume never does.

Those are the housekeeping's purges, the relay's polling, the commit after a consumer's span, the
fetch of the token issuer's keys: each would be a trace of one span, sampled like a request, and at
every poll. A CLIENT span with no parent is dropped; everything else is the configured sampler's.
"""

from collections.abc import Sequence
from contextlib import AbstractContextManager

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import Decision, ParentBased, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes


class InTracesOnly(Sampler):
    def __init__(self, configured: Sampler) -> None:
        self.configured = configured
        self.follows_parent = isinstance(configured, ParentBased)  # as every parentbased_* is

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        if kind is SpanKind.CLIENT and not trace.get_current_span(parent_context).get_span_context().is_valid:
            return SamplingResult(Decision.DROP)
        return self.configured.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return f"InTracesOnly{{{self.configured.get_description()}}}"


def configured_sampler() -> InTracesOnly:
    """OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG as the SDK reads them (default: every trace,
    following the caller's decision), wrapped."""
    return InTracesOnly(TracerProvider(shutdown_on_exit=False).sampler)


def outside_traces() -> AbstractContextManager:
    """`with outside_traces(): start the background tasks`: their statements and HTTP calls outside any span
    would be dropped by InTracesOnly anyway; the instrumentations skip them before building their attributes
    (the tasks copy this context). The project's own spans (a relay's PRODUCER span) are not affected."""
    return suppress_instrumentation()


def dropped_parent(context: Context) -> trace.Span | None:
    """The span `context` carries if the sampler dropped it and drops its children too: a child would cost
    a decision and ids for nothing, so that span stands in for it (its trace context travels on)."""
    parent = trace.get_current_span(context)
    dropped = parent.get_span_context()
    if dropped.is_valid and not dropped.trace_flags.sampled:
        sampler = getattr(trace.get_tracer_provider(), "sampler", None)
        return parent if isinstance(sampler, InTracesOnly) and sampler.follows_parent else None
    return None
