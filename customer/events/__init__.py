"""The event path: the `order.created` consumer (consumer.py) and what it is made of: its queues
(topology.py), its subscription, reading a delivery (incoming.py), applying a batch (applying.py),
where a delivery that did not apply goes (redelivery.py), and the breaker for a database that is away."""
