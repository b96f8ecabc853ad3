"""The clients of a chaos run and the book of everything they were answered.

Several client tasks, each a closed loop of mixed operations: customers created and changed, orders
placed with an Idempotency-Key (retried as a well-behaved client does: after a 503, a 409 "in progress"
or no answer, with the same key and body, honouring Retry-After, for up to RETRY_BUDGET seconds) and
without one (sent again only when admission refused it, which did nothing), status changes along the
lifecycle, and reads. Each order carries a unique product name, its token, so the checker finds every
row a request made. Each order's status changes come from one task only, so its sequence is known.
"""

import asyncio
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import aiohttp

from shared.testing.processes import Services

REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=6)
RETRY_BUDGET = 60.0  # seconds a keyed order is retried: past the 30 s after which a crashed claim is taken over
THINK = 0.03  # seconds between two operations of a task: pacing, so faults meet a steady load
NEXT = {"created": ["paid", "cancelled"], "paid": ["shipped", "cancelled"], "shipped": ["delivered"]}
WEIGHTS = {"order_keyed": 30, "order_plain": 15, "status": 25, "read": 20, "customer_new": 4, "customer_change": 6}


@dataclass
class Answer:
    t: float  # seconds since the run's start
    op: str
    status: int  # 0: no answer (reset, refused, timed out)
    cause: str  # for a 503: what the problem's detail blames


@dataclass
class Order:
    token: str
    customer_id: int
    key: str | None
    statuses: list[int] = field(default_factory=list)  # every attempt's answer, in turn
    ids: set[int] = field(default_factory=set)  # the ids its 201s carried


@dataclass
class Book:
    t0: float
    answers: list[Answer] = field(default_factory=list)
    customers: list[int] = field(default_factory=list)
    orders: list[Order] = field(default_factory=list)
    transitions: dict[int, list[tuple[str, str]]] = field(default_factory=dict)  # order id -> applied changes
    unsure: dict[int, tuple[str, str]] = field(default_factory=dict)  # a change whose answer was lost
    status: dict[int, str] = field(default_factory=dict)  # what each task believes each order's status is

    def note(self, op: str, status: int, detail: str = "") -> None:
        self.answers.append(Answer(time.monotonic() - self.t0, op, status, cause_of(status, detail)))


def cause_of(status: int, detail: str) -> str:
    if status == 0:
        return "no answer"
    if status != 503:
        return ""
    lowered = detail.lower()
    for words, cause in (
        ("at capacity", "refused"),
        ("customer", "customer service"),
        ("backing service", "backing service"),  # the service's database (the broker's absence is no 503)
        ("did not answer in time", "statement timeout"),
    ):
        if words in lowered:
            return cause
    return detail[:40] or "503"


def retry_after(response: aiohttp.ClientResponse) -> float:
    try:
        return min(2.0, float(response.headers.get("Retry-After", "0.5")))
    except ValueError:
        return 0.5


class Clients:
    def __init__(self, services: Services, book: Book, rng: random.Random) -> None:
        self.services, self.book, self.rng = services, book, rng
        self.stop = asyncio.Event()
        self.session = aiohttp.ClientSession(timeout=REQUEST_TIMEOUT, connector=aiohttp.TCPConnector(limit=64))

    async def close(self) -> None:
        await self.session.close()

    async def call(self, op: str, method: str, url: str, **kwargs) -> tuple[int, dict, float]:
        """One request: (status, JSON body, Retry-After); status 0 when no answer came."""
        try:
            async with self.session.request(method, url, **kwargs) as response:
                body = await response.json(content_type=None) if response.content_length != 0 else {}
                body = body if isinstance(body, dict) else {}
                self.book.note(op, response.status, str(body.get("detail", "")))
                return response.status, body, retry_after(response)
        except (aiohttp.ClientError, TimeoutError, ValueError):
            self.book.note(op, 0)
            return 0, {}, 0.5

    async def new_customer(self, op: str = "customer_new") -> int | None:
        body = {"customer": {"name": f"Chaos {uuid.uuid4().hex[:8]}", "address": "1 Fault Line"}}
        status, answer, _ = await self.call(op, "POST", f"{self.services.customer_url}/customers", json=body)
        if status == 201:
            self.book.customers.append(answer["id"])
            return answer["id"]
        return None

    async def change_customer(self) -> None:
        customer_id = self.rng.choice(self.book.customers)
        body = {"customer": {"address": f"{self.rng.randint(1, 999)} Fault Line"}}
        await self.call("customer_change", "PATCH", f"{self.services.customer_url}/customers/{customer_id}", json=body)

    async def place(self, keyed: bool, mine: list[int]) -> None:
        order = Order(uuid.uuid4().hex[:16], self.rng.choice(self.book.customers), uuid.uuid4().hex if keyed else None)
        self.book.orders.append(order)
        await self.send(order, mine)

    async def send(self, order: Order, mine: list[int]) -> None:
        """POST the order, and again while a well-behaved client would (RETRY_BUDGET at most)."""
        fields = {"customer_id": order.customer_id, "product_name": f"chaos-{order.token}", "quantity": 1}
        body = {"order": {**fields, "price": "9.50"}}
        headers = {"Idempotency-Key": order.key} if order.key else {}
        op, url = ("order_keyed" if order.key else "order_plain"), f"{self.services.order_url}/orders"
        deadline = time.monotonic() + RETRY_BUDGET
        while True:
            status, answer, wait = await self.call(op, "POST", url, json=body, headers=headers)
            order.statuses.append(status)
            if status == 201:
                order.ids.add(answer["id"])
                if len(order.ids) == 1 and answer["id"] not in self.book.status:
                    self.book.status[answer["id"]] = "created"
                    mine.append(answer["id"])
                return
            if order.key:
                retryable = status in (0, 409, 503)
            else:  # without a key only a refusal by admission, which did nothing, is safe to send again
                retryable = status == 503 and "at capacity" in str(answer.get("detail", ""))
            if not retryable or time.monotonic() > deadline:
                return
            await asyncio.sleep(wait)  # Retry-After, as the service asked

    async def come_back(self) -> None:
        """After the heal, the clients whose keyed orders got no final answer try once more, as they
        would later on: a retry with the key returns the order if it was stored, or stores it."""
        pending = [o for o in self.book.orders if o.key and o.statuses and o.statuses[-1] in (0, 409, 503)]
        await asyncio.gather(*(self.send(order, []) for order in pending))

    async def change_status(self, mine: list[int]) -> None:
        movable = [order_id for order_id in mine if self.book.status[order_id] in NEXT]
        if not movable:
            return
        order_id = self.rng.choice(movable)
        current = self.book.status[order_id]
        new = self.rng.choice(NEXT[current])
        body = {"order": {"status": new}}
        status, _, _ = await self.call("status", "PATCH", f"{self.services.order_url}/orders/{order_id}", json=body)
        if status == 200:
            self.book.status[order_id] = new
            self.book.transitions.setdefault(order_id, []).append((current, new))
        elif not 400 <= status < 500:  # no answer or a 5xx: whether it applied, the checker reads it
            mine.remove(order_id)
            self.book.unsure[order_id] = (current, new)

    async def read(self, mine: list[int]) -> None:
        if mine and self.rng.random() < 0.5:
            await self.call("read", "GET", f"{self.services.order_url}/orders/{self.rng.choice(mine)}")
        else:
            await self.call(
                "read", "GET", f"{self.services.customer_url}/customers/{self.rng.choice(self.book.customers)}"
            )

    async def task(self) -> None:
        mine: list[int] = []
        ops, weights = list(WEIGHTS), list(WEIGHTS.values())
        while not self.stop.is_set():
            op = self.rng.choices(ops, weights)[0]
            if op.startswith("order"):
                await self.place(op == "order_keyed", mine)
            elif op == "status":
                await self.change_status(mine)
            elif op == "read":
                await self.read(mine)
            elif op == "customer_new":
                await self.new_customer()
            else:
                await self.change_customer()
            await asyncio.sleep(THINK)

    async def seed_customers(self, count: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.book.customers) < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"could not create {count} customers before the faults")
            await self.new_customer("seed")


def tally(answers: list[Answer]) -> dict[str, int]:
    """Answers by outcome: ok (2xx), 4xx, refused (admission), 503 by cause, no answer."""
    counts: Counter = Counter()
    for answer in answers:
        if 200 <= answer.status < 300:
            counts["ok"] += 1
        elif answer.status == 503 or answer.status == 0:
            counts[answer.cause if answer.cause in ("refused", "no answer") else f"503 {answer.cause}"] += 1
        else:
            counts[str(answer.status)] += 1
    return dict(counts)
