"""The passwords of a compose deployment, made on first use: `python -m shared.deploy_secrets`.

docker-compose.yml runs it as the one-shot `secrets` service before anything else. A spec (infra/secrets.json)
names each password and the files it is written to, one folder per service, each folder a volume that only
that service mounts: no service sees another's passwords, and none stands in the repository, the compose
file or an environment. The RabbitMQ definitions (users with salted hashes, their rights, the topology that
must exist before the services start) are written from a template without users.

    python -m shared.deploy_secrets init [--root /secrets]     # make what is missing; keep the rest
    python -m shared.deploy_secrets rotate [NAME ...]          # new values (all without a NAME)
    python -m shared.deploy_secrets show NAME                  # print one (an operator's login)
"""

import argparse
import base64
import hashlib
import json
import os
import secrets
import sys
from pathlib import Path

STORE = "store"  # the folder that keeps every value; only this command mounts it
SPEC = Path("/etc/shop/secrets.json")


def new_password() -> str:
    return secrets.token_urlsafe(32)  # URL-safe: it goes into URLs as it is


def rabbit_hash(password: str) -> str:
    """RabbitMQ's rabbit_password_hashing_sha256: base64(salt + sha256(salt + password)), a 4-byte salt."""
    salt = os.urandom(4)
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def write(path: Path, text: str) -> None:
    """Written whole or not at all. Readable by the service's own user, whichever uid its image runs as: the
    folder is a volume that no other service mounts."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.new")
    temporary.write_text(text)
    temporary.chmod(0o444)
    temporary.replace(path)


class Secrets:
    def __init__(self, root: Path, spec: dict) -> None:
        self.root, self.spec = root, spec

    def value(self, name: str) -> str:
        return (self.root / STORE / name).read_text()

    def make(self, names: list[str], rotate: bool) -> list[str]:
        """Each named password made (or remade) and copied to every file the spec names for it."""
        made = []
        for name in names:
            stored = self.root / STORE / name
            if rotate or not stored.exists():
                write(stored, new_password())
                made.append(name)
            for target in self.spec["passwords"][name]:
                if rotate or not (self.root / target).exists():
                    write(self.root / target, self.value(name))
        self.write_broker_definitions()
        return made

    def write_broker_definitions(self) -> None:
        """The template's rights and topology with one user per entry of `broker.users` (hashed password)."""
        broker = self.spec["broker"]
        definitions = json.loads(Path(broker["template"]).read_text())
        definitions["users"] = [
            {
                "name": user,
                "password_hash": rabbit_hash(self.value(entry["password"])),
                "hashing_algorithm": "rabbit_password_hashing_sha256",
                "tags": entry.get("tags", ""),
            }
            for user, entry in broker["users"].items()
        ]
        write(self.root / broker["output"], json.dumps(definitions, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path("/secrets"), help="where the folders are")
    parser.add_argument("--spec", type=Path, default=SPEC)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("init", help="make the passwords that are missing")
    rotate = commands.add_parser("rotate", help="new values (docs/operations.md: rotating secrets)")
    rotate.add_argument("names", nargs="*")
    show = commands.add_parser("show", help="print one password")
    show.add_argument("name")
    args = parser.parse_args(argv)
    store = Secrets(args.root, json.loads(args.spec.read_text()))
    known = list(store.spec["passwords"])
    if args.command == "show":
        print(store.value(args.name))
        return 0
    names = (args.names or known) if args.command == "rotate" else known
    unknown = sorted(set(names) - set(known))
    if unknown:
        print(f"unknown: {', '.join(unknown)} (known: {', '.join(known)})", file=sys.stderr)
        return 2
    made = store.make(names, rotate=args.command == "rotate")
    print(f"secrets: {'made ' + ', '.join(made) if made else 'all present'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
