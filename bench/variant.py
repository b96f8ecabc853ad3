"""A variant of ours, for a phase that measures one beside the round's systems: ports, databases and broker
names of its own (from its tag), and its own settings added to the environment."""

from systems import Ours, our_queues


class OursVariant(Ours):
    def __init__(self, workers: int, tag: str, customer_port: int, env: dict[str, str] | None = None) -> None:
        self.name = f"ours-{tag}"
        self.customer_port, self.order_port = customer_port, customer_port + 1
        self.databases = (f"bench_{tag.replace('-', '_')}_customers", f"bench_{tag.replace('-', '_')}_orders")
        self.exchange, self.queue = f"bench.{tag}.orders", f"bench.{tag}.customer.orders"
        self.queues = our_queues(self.queue)
        self.extra_env = env or {}
        super().__init__(workers)

    def env(self) -> dict:
        return {**super().env(), **self.extra_env}
