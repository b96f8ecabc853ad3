"""The bench's phases, in the order they run and report.

A phase is a module with
- `async def run(bench: Round) -> None`: measure on the round's systems (bench.targets) and put what it
  found in bench.results[system name], under keys of its own;
- `FIGURES`: the report's rows it adds (figure.Figure: where its result holds each, and any target);
- optionally `add_options(parser)`: its command-line options (a phase whose option is 0 does nothing).
Adding a phase: write the module, then list it below.
"""

from phases import auth, backlog, event_rates, get_loads, light_load, lists, overload, post_load, tracing

EVERY_ROUND = (post_load, light_load, get_loads)  # closed-loop figures: the min-max over the rounds
FIRST_ROUND = (overload, backlog, event_rates, tracing, auth, lists)  # longer, and judged once
PHASES = EVERY_ROUND + FIRST_ROUND
