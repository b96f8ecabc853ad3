"""shared/deploy_secrets.py, as compose's `secrets` service runs it, on infra/secrets.json and the broker
definitions template: every password made once, copied where the spec says, kept, rotated on demand."""

import base64
import hashlib
import json

import pytest

from customer.settings import CustomerSettings
from shared.deploy_secrets import main
from tests.infra_files import ROOT


@pytest.fixture
def spec(tmp_path):
    spec = json.loads((ROOT / "infra" / "secrets.json").read_text())
    spec["broker"]["template"] = str(ROOT / "infra" / "rabbitmq" / "definitions.json")
    path = tmp_path / "secrets.json"
    path.write_text(json.dumps(spec))
    return spec, ["--root", str(tmp_path / "secrets"), "--spec", str(path)]


def files(root, spec) -> dict[str, dict[str, str]]:
    return {name: {t: (root / t).read_text() for t in targets} for name, targets in spec["passwords"].items()}


def hash_matches(entry: dict, password: str) -> bool:
    raw = base64.b64decode(entry["password_hash"])
    return hashlib.sha256(raw[:4] + password.encode()).digest() == raw[4:]


def test_init_makes_each_password_once_and_copies_it_where_the_spec_says(spec, tmp_path, capsys):
    spec, args = spec
    root = tmp_path / "secrets"
    assert main([*args, "init"]) == 0
    made = files(root, spec)
    for name, copies in made.items():
        assert len(set(copies.values())) <= 1, name  # the same value in each of its files
        assert (root / "store" / name).stat().st_mode & 0o777 == 0o444
    values = [(root / "store" / name).read_text() for name in spec["passwords"]]
    assert len(set(values)) == len(values) and all(len(v) >= 40 for v in values)  # random, distinct
    definitions = json.loads((root / spec["broker"]["output"]).read_text())
    users = {user["name"]: user for user in definitions["users"]}
    assert set(users) == set(spec["broker"]["users"]) and "guest" not in users
    for user, entry in spec["broker"]["users"].items():
        assert hash_matches(users[user], (root / "store" / entry["password"]).read_text())
    assert main([*args, "init"]) == 0  # the next `up`: nothing changes
    assert files(root, spec) == made
    assert "all present" in capsys.readouterr().out


def test_rotate_gives_the_named_passwords_new_values_everywhere(spec, tmp_path):
    spec, args = spec
    root = tmp_path / "secrets"
    main([*args, "init"])
    before = files(root, spec)
    assert main([*args, "rotate", "customer_service", "broker_order_service"]) == 0
    after = files(root, spec)
    for name in spec["passwords"]:
        changed = {t for t in after[name] if after[name][t] != before[name][t]}
        assert changed == (set(after[name]) if name in ("customer_service", "broker_order_service") else set())
    definitions = json.loads((root / spec["broker"]["output"]).read_text())
    (order,) = [user for user in definitions["users"] if user["name"] == "order_service"]
    assert hash_matches(order, (root / "store" / "broker_order_service").read_text())
    assert main([*args, "rotate", "no_such"]) == 2


def test_a_url_setting_takes_its_password_from_its_password_file(tmp_path, monkeypatch):
    (tmp_path / "db").write_text("s3cret-_x\n")
    (tmp_path / "amqp").write_text("other")
    monkeypatch.setenv("CUSTOMER_DATABASE_URL", "postgres://customer_service@postgres:5432/customers")
    monkeypatch.setenv("CUSTOMER_DATABASE_URL_PASSWORD_FILE", str(tmp_path / "db"))
    monkeypatch.setenv("AMQP_URL", "amqp://customer_service@a:5672/,amqp://customer_service@b:5672/")
    monkeypatch.setenv("AMQP_URL_PASSWORD_FILE", str(tmp_path / "amqp"))
    settings = CustomerSettings()
    assert settings.database_url == "postgres://customer_service:s3cret-_x@postgres:5432/customers"
    assert settings.amqp_url == "amqp://customer_service:other@a:5672/,amqp://customer_service:other@b:5672/"
    assert CustomerSettings(amqp_url="amqp://u:given@h/").amqp_url == "amqp://u:given@h/"  # arguments win
