"""docker-compose.yml agrees with the code it runs: the compose spec, dependencies and start order,
environment variables, ports, commands, health checks and the one-shot migrate services.

There is no Docker engine here (tests/test_compose_stack.py runs it through podman where it can): these
checks find statically what `docker compose up --build` would otherwise only find out at run time.
"""

import importlib
import inspect
import json
import re
import runpy
import sys
import warnings
from urllib.parse import urlsplit

import pytest

import shared.admission
import shared.metrics
import shared.tracing
from shared.password_files import SUFFIX
from shared.serve import gunicorn_argv
from shared.testing.compose import COMPOSE_FILE, SECRETS_SERVICE, environment, project_services
from tests.infra_files import (
    APP_SERVICES,
    BIN,
    CONTRACT_VARS,
    MIGRATE_SERVICES,
    ROOT,
    SETTINGS,
    app_routes,
    bind_port,
    container_ports,
    depends_on,
    dockerfile_instructions,
    gunicorn_config_file,
    gunicorn_env_names,
    gunicorn_step,
    port_mappings,
    run,
    run_sh,
    run_sh_gunicorn_config,
    service_command,
    settings_env_names,
    volume_mounts,
)


def test_compose_file_follows_the_compose_spec():
    result = run(BIN / "check-jsonschema", "--builtin-schema", "vendor.compose-spec", COMPOSE_FILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_system_has_its_services_and_observability_is_opt_in(services):
    assert {"postgres", "rabbitmq", "customer", "order", *MIGRATE_SERVICES} <= set(services)
    for name in ("postgres", "rabbitmq", *APP_SERVICES, *MIGRATE_SERVICES):
        assert "profiles" not in services[name], f"{name} must start with a plain `docker compose up`"
    for name in ("prometheus", "grafana", "blackbox", "jaeger"):
        assert services[name].get("profiles") == ["observability"], name


def test_every_dependency_is_a_service_that_starts_with_its_dependent(services):
    for name, service in services.items():
        for target, spec in depends_on(service).items():
            assert target in services, f"{name} depends on undefined service {target!r}"
            # Compose refuses to start a service whose dependency sits in a profile that is not enabled,
            # unless the dependency is `required: false` (Compose 2.20+: waited for only when it runs).
            if spec.get("required", True):
                assert set(services[target].get("profiles", [])) <= set(service.get("profiles", [])), (name, target)
            if spec.get("condition") == "service_completed_successfully":
                assert services[target].get("restart") == "no", f"{target} runs once; compose must not restart it"
            if spec.get("condition") == "service_healthy":
                # The images here define no HEALTHCHECK of their own: without a test, never healthy.
                check = services[target].get("healthcheck", {})
                assert check.get("test") and check["test"] != ["NONE"] and not check.get("disable"), (
                    f"{name} waits for {target} to be healthy; it has no health check"
                )


def test_every_interpolated_variable_has_a_default():
    # An unset ${VAR} (or a bare $VAR in a command) becomes "" on a fresh machine.
    text = COMPOSE_FILE.read_text().replace("$$", "")
    for match in re.finditer(r"\$(\{[^}]*\}|\w+)", text):
        assert re.fullmatch(r"\{\w+:-[^}]*\}", match.group(1)), f"no default: ${match.group(1)}"


def test_bind_mounts_name_files_in_the_repo(services):
    for name, service in services.items():
        for source in volume_mounts(service):
            assert (ROOT / source).exists(), f"{name} mounts {source}, which does not exist"


@pytest.mark.parametrize("name", APP_SERVICES + MIGRATE_SERVICES)
def test_service_sets_only_variables_the_service_reads(services, name):
    settings = settings_env_names(SETTINGS[name.removesuffix("-migrate")])
    password_files = {variable + SUFFIX for variable in settings if variable.endswith("_URL")}
    readable = settings | password_files | gunicorn_env_names() | shared.tracing.ENV_VARS
    assert {"WORKERS", "PROMETHEUS_MULTIPROC_DIR"} <= readable, "shared/gunicorn_conf.py no longer reads these"
    unknown = set(environment(services[name])) - readable
    assert not unknown, f"{name} sets variables nothing reads: {sorted(unknown)}"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_service_overrides_every_localhost_default(services, name):
    env = environment(services[name])
    needed = set(CONTRACT_VARS[name])
    for field in SETTINGS[name].model_fields.values():
        if isinstance(field.default, str) and re.search(r"\b(127\.0\.0\.1|localhost)\b", field.default):
            needed.add(str(field.validation_alias).upper())
    assert needed <= set(env), f"{name} would reach for localhost: {sorted(needed - set(env))}"
    SETTINGS[name].model_validate(env)  # and every value parses as the service will parse it


@pytest.mark.parametrize("name", APP_SERVICES + MIGRATE_SERVICES)
def test_service_urls_point_at_the_services_it_waits_for(services, name):
    env, deps = environment(services[name]), depends_on(services[name])
    urls = [urlsplit(value) for value in env.values() if re.match(r"^\w+://", value)]
    assert urls
    for url in urls:
        assert url.hostname in services, f"{name}: {url.geturl()} names no compose service"
        assert deps.get(url.hostname, {}).get("condition") == "service_healthy", f"{name} must wait for {url.hostname}"
        assert url.port in container_ports(services[url.hostname]), url.geturl()
        if url.scheme.startswith("postgres"):
            pg_env = environment(services[url.hostname])
            superuser = pg_env.get("POSTGRES_USER", "postgres")
            if url.path == "/postgres":  # POSTGRES_ADMIN_URL: creates the service's role and database
                assert url.username == superuser
            else:  # the service runs as its own role, and migrates as its database's owner, as its settings say
                settings = SETTINGS[name.removesuffix("-migrate")](_env_file=None)
                roles = {urlsplit(url).username for url in (settings.database_url, settings.migration_database_url)}
                assert url.username in roles and url.username != superuser
            assert pg_env["POSTGRES_HOST_AUTH_METHOD"] == "scram-sha-256", "every client gives its password"
        # The password from a file of the service's secrets volume, never in the URL.
        assert url.password is None, url.geturl()
    for variable, value in env.items():
        if re.match(r"^\w+://", value) and urlsplit(value).hostname in ("postgres", "rabbitmq"):
            assert env.get(variable + SUFFIX, "").startswith("/run/secrets/"), f"{name}: {variable} has no password"


CONTRACT_PORTS = {"customer": 3000, "order": 3001}


@pytest.mark.parametrize("name", APP_SERVICES)
def test_service_publishes_its_default_port(services, name):
    default_port = CONTRACT_PORTS[name]
    assert port_mappings(services[name]) == [(default_port, default_port)]
    assert bind_port(services[name]) == default_port


@pytest.mark.parametrize("name", APP_SERVICES)
def test_a_one_shot_migrate_service_prepares_the_database_like_make_run(services, name, monkeypatch, capsys):
    migrate, service = services[f"{name}-migrate"], services[name]
    make_prepare = re.findall(rf"\$\(BIN\)/python (-m {name}\.manage \w+)", (ROOT / "Makefile").read_text())
    assert make_prepare == [f"-m {name}.manage prepare"]
    assert service_command(migrate) == [["python", *make_prepare[0].split()]]
    assert depends_on(service)[f"{name}-migrate"] == {"condition": "service_completed_successfully"}
    variable = f"{name.upper()}_DATABASE_URL"
    assert environment(migrate)[variable] == environment(service)[variable], "it must prepare the service's database"
    # `python -m <service>.manage --help`, in this process (a subprocess costs a second of imports).
    monkeypatch.setattr(sys, "argv", [f"{name}.manage", "--help"])
    with pytest.raises(SystemExit) as exited, warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # runpy: "found in sys.modules" when already imported
        runpy.run_module(f"{name}.manage", run_name="__main__", alter_sys=True)
    assert exited.value.code == 0
    assert "prepare" in capsys.readouterr().out


def test_only_the_migrate_services_hold_the_admin_url(services):
    holders = {name for name, service in services.items() if "POSTGRES_ADMIN_URL" in environment(service)}
    assert holders == set(MIGRATE_SERVICES)


def test_a_service_that_waits_for_another_waits_for_its_ready_route(services):
    for name in APP_SERVICES:
        for target, spec in depends_on(services[name]).items():
            if target in APP_SERVICES:
                assert spec == {"condition": "service_healthy"}, f"{name} must wait for {target} to be ready"
                check = services[target]["healthcheck"]["test"]
                assert urlsplit(re.search(r"urlopen\('([^']+)'", check[3]).group(1)).path == "/ready", target
    assert "customer" in depends_on(services["order"])


@pytest.mark.parametrize("name", APP_SERVICES)
def test_service_runs_gunicorn_like_run_sh(services, name):
    app, options = gunicorn_step(services[name])
    assert app == re.search(r'gunicorn"?\s+"?([\w.$]+:\w+)', run_sh()).group(1).replace("$1", name)
    module, factory = app.split(":")
    assert inspect.iscoroutinefunction(getattr(importlib.import_module(module), factory))
    assert options["-c"] == run_sh_gunicorn_config()
    assert gunicorn_config_file(options["-c"]).is_file()
    assert options["--name"] == name


@pytest.mark.parametrize("name", APP_SERVICES)
def test_python_m_service_runs_gunicorn_like_run_sh(name):
    argv = gunicorn_argv(name, CONTRACT_PORTS[name], [])
    assert argv[:2] == ["gunicorn", f"{name}.app:create_app"]
    options = dict(zip(argv[2::2], argv[3::2], strict=True))
    assert options == {"-c": run_sh_gunicorn_config(), "--name": name, "--bind": f"127.0.0.1:{CONTRACT_PORTS[name]}"}
    assert importlib.import_module(f"{name}.__main__")


@pytest.mark.parametrize("name", APP_SERVICES)
def test_service_healthcheck_asks_its_own_health_route(services, name):
    test = services[name]["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"], "python:*-slim has no curl"
    url = urlsplit(re.search(r"urlopen\('([^']+)'", test[3]).group(1))
    assert url.port == bind_port(services[name])
    assert ("GET", url.path) in app_routes(name)


@pytest.mark.parametrize("name", APP_SERVICES)
def test_service_keeps_its_metrics_files_where_it_can_write(services, name):
    service = services[name]
    directory = environment(service).get("PROMETHEUS_MULTIPROC_DIR")
    if int(environment(service).get("WORKERS", 1)) > 1:
        assert directory, "several workers without a multiprocess dir: each scrape shows one worker"
    if directory and service.get("read_only"):
        assert any(directory.startswith(tmpfs.rstrip("/") + "/") for tmpfs in service.get("tmpfs", [])), directory


# CIS Docker benchmark: what the images' entrypoints need to hand their data folder to their own user and
# drop root (postgres, rabbitmq); nothing for the rest, which start as a user of their own.
ENTRYPOINT_CAPABILITIES = {"CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID"}
ROOT_ENTRYPOINTS = {"postgres", "rabbitmq"}


def test_every_service_drops_every_capability_and_privilege_gain_and_has_limits(services):
    for name, service in services.items():
        assert service.get("cap_drop") == ["ALL"], name
        assert "no-new-privileges:true" in service.get("security_opt", []), name
        added = set(service.get("cap_add", []))
        assert added <= (ENTRYPOINT_CAPABILITIES if name in ROOT_ENTRYPOINTS else set()), (name, added)
        assert re.fullmatch(r"\d+[mg]", str(service.get("mem_limit", ""))), f"{name}: no memory limit"
        assert isinstance(service.get("pids_limit"), int) and service["pids_limit"] > 0, f"{name}: no pids limit"


def test_images_are_pinned_by_exact_tags(services):
    images = [s["image"] for s in services.values() if "image" in s and "build" not in s]
    images += [args.split()[0] for op, args in dockerfile_instructions() if op == "FROM" and " AS " not in args]
    images += [args.split()[0] for op, args in dockerfile_instructions() if op == "FROM" and " AS " in args]
    for image in images:  # PostgreSQL numbers its releases major.minor since 10
        release = r"\d+\.\d+" if image.startswith("postgres:") else r"v?\d+\.\d+\.\d+"
        assert re.search(rf":{release}(-[\w.-]+)?$", image), f"{image} is not an exact release"
    (rabbitmq,) = [image for image in images if image.startswith("rabbitmq:")]
    assert int(rabbitmq.split(":")[1].split(".")[0]) >= 4, "3.x is past community support"


def test_the_broker_runs_the_prometheus_plugin(services):
    mounts = volume_mounts(services["rabbitmq"])
    plugins = (ROOT / next(s for s, t in mounts.items() if t == "/etc/rabbitmq/enabled_plugins")).read_text()
    assert "rabbitmq_prometheus" in plugins and "15692" in map(str, services["rabbitmq"]["expose"])


def test_no_password_stands_in_the_compose_file_or_trusts_a_client(services):
    assert "guest" not in json.dumps(services).lower()
    for name, service in services.items():
        for variable, value in environment(service).items():
            if re.search(r"PASSWORD|SECRET", variable):
                assert variable.endswith(("_FILE", "__FILE")) and value.startswith("/run/secrets/"), (name, variable)
            if re.match(r"^\w+://", value):
                assert urlsplit(value).password is None, (name, variable)
    assert environment(services["postgres"])["POSTGRES_HOST_AUTH_METHOD"] == "scram-sha-256"
    assert environment(services["grafana"])["GF_AUTH_ANONYMOUS_ENABLED"] == "false"


def secrets_folders(services) -> dict[str, str]:
    """Volume -> the folder of infra/secrets.json the `secrets` service writes into it."""
    mounts = (volume.split(":") for volume in services[SECRETS_SERVICE]["volumes"])
    return {source: target.removeprefix("/secrets/") for source, target, *_ in mounts if not source.startswith(".")}


def test_every_password_file_a_service_reads_is_made_for_it_alone(services):
    spec = json.loads((ROOT / "infra" / "secrets.json").read_text())
    written = {target for targets in spec["passwords"].values() for target in targets}
    folders, readers = secrets_folders(services), {}
    for name, service in services.items():
        files = [v for k, v in environment(service).items() if k.endswith("_FILE") and v.startswith("/run/secrets/")]
        if name == "rabbitmq" or files:
            (volume,) = [v.split(":")[0] for v in service["volumes"] if v.split(":")[1:] == ["/run/secrets", "ro"]]
            assert readers.setdefault(volume, name) == name, f"{volume} is mounted by {readers[volume]} and {name}"
            assert depends_on(service)[SECRETS_SERVICE] == {"condition": "service_completed_successfully"}, name
            for path in files:
                assert f"{folders[volume]}/{path.removeprefix('/run/secrets/')}" in written, (name, path)
    assert services[SECRETS_SERVICE]["restart"] == "no" and SECRETS_SERVICE not in readers.values()


def test_compose_env_example_lists_every_variable_compose_reads_with_its_default(services):
    listed = dict(
        line.split("=", 1)
        for line in (ROOT / "compose.env.example").read_text().splitlines()
        if re.match(r"^[A-Z_]+=", line)
    )
    read = dict(re.findall(r"\$\{(\w+):-([^}]*)\}", COMPOSE_FILE.read_text()))
    assert read and listed == read
    for name, service in project_services(services).items():
        assert {"path": "./compose.env", "required": False} in service["env_file"], name
    assert "compose.env" in (ROOT / ".gitignore").read_text().splitlines()
