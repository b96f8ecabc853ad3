"""AMQP_URL: one broker URL, or several comma-separated (the nodes of a cluster)."""

from urllib.parse import urlsplit

BROKER_SCHEMES = ("amqp", "amqps")


def broker_urls(value: str) -> list[str]:
    """The comma-separated AMQP URLs of AMQP_URL; ValueError names what is wrong with it."""
    urls = [part.strip() for part in value.split(",")]
    for n, url in enumerate(urls, 1):
        if not url:
            raise ValueError(f"AMQP_URL: item {n} of {len(urls)} is empty")
        parts = urlsplit(url)
        if parts.scheme not in BROKER_SCHEMES or not parts.hostname:
            raise ValueError(f"AMQP_URL: item {n} ({where(url)}) is not an amqp:// or amqps:// URL with a host")
    return urls


def where(url: str) -> str:
    """The URL without its credentials, for logs and messages."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}{parts.path}"
