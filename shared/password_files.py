"""`<NAME>_PASSWORD_FILE`: the password of a URL setting read from a file (a container secret), so that the
URL itself stays configuration and the password never stands in the environment or a compose file.

`CUSTOMER_DATABASE_URL=postgres://customer_service@postgres:5432/customers` with
`CUSTOMER_DATABASE_URL_PASSWORD_FILE=/run/secrets/database_password` connects with the file's content as
the password (surrounding white space dropped); a comma-separated list of URLs gets it in each one.
"""

from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic.fields import FieldInfo
from pydantic_settings import EnvSettingsSource

SUFFIX = "_PASSWORD_FILE"


def with_password(url: str, password: str) -> str:
    parts = urlsplit(url)
    if not parts.username:
        raise ValueError(f"a password file for {parts.scheme}://{parts.hostname}, which names no user")
    netloc = f"{parts.username}:{quote(password, safe='')}@{parts.netloc.rsplit('@', 1)[-1]}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class EnvWithPasswordFiles(EnvSettingsSource):
    """The environment, with each URL's password taken from its `<NAME>_PASSWORD_FILE` when that is set."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        value, key, complex_ = super().get_field_value(field, field_name)
        if isinstance(value, str) and "://" in value:
            name = key + SUFFIX
            path = self.env_vars.get(name if self.case_sensitive else name.lower())
            if path:
                password = Path(path).read_text().strip()
                value = ",".join(with_password(url.strip(), password) for url in value.split(","))
        return value, key, complex_
