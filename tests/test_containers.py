"""The container setup agrees with the code it runs.

There is no Docker engine here, so these tests check what `docker compose up --build` would
otherwise only find out at run time: the compose file against the compose spec, the Dockerfile
through hadolint, the build context, and that commands, environment variables, ports, health
checks, scrape targets and dashboard queries name things the services really have.
"""

import asyncio
import base64
import functools
import hashlib
import importlib
import inspect
import json
import posixpath
import re
import runpy
import shlex
import subprocess
import sys
import tomllib
import warnings
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from aiohttp import web
from prometheus_client.metrics import MetricWrapperBase
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

import customer.metrics
import order.metrics
import shared.admission
import shared.metrics
import shared.tracing
from customer.settings import CustomerSettings
from order.settings import OrderSettings
from shared.serve import gunicorn_argv

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "infra" / "Dockerfile"
SETTINGS: dict[str, type[BaseSettings]] = {"customer": CustomerSettings, "order": OrderSettings}
APP_SERVICES = sorted(SETTINGS)
MIGRATE_SERVICES = [f"{name}-migrate" for name in APP_SERVICES]  # one-shot: prepare the service's database
# What each service cannot run without in a container (the contract's variables).
CONTRACT_VARS = {
    "customer": {"CUSTOMER_DATABASE_URL", "AMQP_URL"},
    "order": {"ORDER_DATABASE_URL", "AMQP_URL", "CUSTOMER_SERVICE_URL"},
}
# The series prometheus_client exposes for one metric family, by type.
SERIES_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
    "stateset": ("",),
    "enum": ("",),
}
PROMQL_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
                   "offset", "bool", "inf", "nan", "atan2"}


# --- readers ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict[str, dict]:
    return compose["services"]


def run(*argv: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], cwd=ROOT, capture_output=True, text=True, timeout=60)


def interpolate(value: str) -> str:
    """Compose's `${VAR:-default}` with VAR unset: what a fresh machine gets."""
    return re.sub(r"\$\{\w+:?-([^}]*)\}", r"\1", str(value)).replace("$$", "$")


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {name: interpolate(value) for name, value in env.items()}


def depends_on(service: dict) -> dict[str, dict]:
    deps = service.get("depends_on") or {}
    return {name: {"condition": "service_started"} for name in deps} if isinstance(deps, list) else deps


def port_mappings(service: dict) -> list[tuple[int, int]]:
    """(published, target) pairs from short ("[ip:]published:target") or long syntax."""
    pairs = []
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            pairs.append((int(entry["published"]), int(entry["target"])))
        else:
            *_, published, target = str(entry).split(":")
            pairs.append((int(published), int(target.split("/")[0])))
    return pairs


def container_ports(service: dict) -> set[int]:
    return {target for _, target in port_mappings(service)} | {int(port) for port in service.get("expose", [])}


def settings_env_names(cls: type[BaseSettings]) -> set[str]:
    names = set()
    for name, field in cls.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, str):
            names.add(alias.upper())
        elif isinstance(alias, AliasChoices):
            names.update(choice.upper() for choice in alias.choices if isinstance(choice, str))
        else:
            names.add((cls.model_config.get("env_prefix", "") + name).upper())
    return names


def gunicorn_config_file(option: str) -> Path:
    """gunicorn's -c value, a file or `python:<module>`, as the file in the repo."""
    if option.startswith("python:"):
        return ROOT / (option.removeprefix("python:").replace(".", "/") + ".py")
    return ROOT / option


def gunicorn_env_names() -> set[str]:
    text = gunicorn_config_file(run_sh_gunicorn_config()).read_text()
    return set(re.findall(r"""os\.(?:environ\.get\(|environ\[|getenv\()\s*["']([A-Za-z0-9_]+)["']""", text))


def run_sh() -> str:
    return (ROOT / "infra" / "scripts" / "run.sh").read_text()


def run_sh_gunicorn_config() -> str:
    (config,) = set(re.findall(r"\s-c\s+(\S+)", run_sh()))
    return config


def service_command(service: dict) -> list[list[str]]:
    """The command's steps: an exec-form list is one; a `sh -c` script its `&&`-chained steps."""
    command = service["command"]
    assert isinstance(command, list), f"a string command runs under a shell that gets the signals: {command}"
    if command[:2] != ["sh", "-c"]:
        return [command]
    assert len(command) == 3, command
    return [shlex.split(step) for step in command[2].split("&&")]


def gunicorn_step(service: dict) -> tuple[str, dict[str, str]]:
    (step,) = service_command(service)
    assert step[0] == "gunicorn", f"gunicorn must be the container's process (exec form), to get signals: {step}"
    app, rest = step[1], step[2:]
    assert len(rest) % 2 == 0, rest
    return app, dict(zip(rest[::2], rest[1::2], strict=True))


def bind_port(service: dict) -> int:
    host, port = gunicorn_step(service)[1]["--bind"].rsplit(":", 1)
    assert host == "0.0.0.0", "inside a container, 127.0.0.1 is unreachable from the other containers"
    return int(port)


@functools.cache
def app_routes(name: str) -> frozenset[tuple[str, str]]:
    """(method, route) pairs of the service's app, built as gunicorn builds it (no I/O happens before startup)."""
    module = importlib.import_module(f"{name}.app")
    app: web.Application = asyncio.run(module.create_app(SETTINGS[name]()))
    return frozenset((route.method, route.resource.canonical) for route in app.router.routes() if route.resource)


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line.strip() else "")
            for line in (raw.strip() for raw in text.splitlines()) if line and not line.startswith("#")]


def dockerignore_regex(pattern: str) -> re.Pattern:
    parts = []
    for token in re.split(r"(\*\*/|\*\*|\*|\?|\[[^\]]*\])", pattern.strip("/")):
        if token.startswith("[") and token.endswith("]") and len(token) > 2:
            parts.append(token)  # Go's filepath.Match classes read like regex ones ([^...] negates)
        else:
            parts.append({"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}.get(token, re.escape(token)))
    return re.compile("".join(parts) + "$")


def in_build_context(path: str) -> bool:
    """Docker's rule: the last .dockerignore pattern matching the path or one of its parents wins."""
    included = True
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    prefixes = [path.split("/")[: i + 1] for i in range(path.count("/") + 1)]
    for pattern in patterns:
        negated = pattern.startswith("!")
        regex = dockerignore_regex(pattern.lstrip("!"))
        if any(regex.match("/".join(prefix)) for prefix in prefixes):
            included = negated
    return included


def metric_series() -> dict[str, str]:
    """Every series name the services export, mapped to its metric family."""
    series = {}
    modules = (shared.metrics, shared.admission, customer.metrics, order.metrics)
    for metric in (value for module in modules for value in vars(module).values()):
        if isinstance(metric, MetricWrapperBase):
            (family,) = metric.describe()
            series.update({family.name + suffix: family.name for suffix in SERIES_SUFFIXES[family.type]})
    return series


def promql_series(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers that are not functions, keywords, labels or durations."""
    expr = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    names = re.findall(r"(?<![\w$.:])([A-Za-z_:][\w:]*)(?![\w:])(?!\s*\()", expr)
    return {name for name in names if name.lower() not in PROMQL_KEYWORDS}


def dashboard() -> dict:
    return json.loads((ROOT / "infra" / "grafana" / "dashboards" / "shop-services.json").read_text())


def panels(items: list[dict]) -> Iterator[dict]:
    for panel in items:
        yield panel
        yield from panels(panel.get("panels", []))


def dashboard_exprs() -> list[str]:
    return [target["expr"] for panel in panels(dashboard()["panels"]) for target in panel.get("targets", [])
            if target.get("expr")]


def volume_mounts(service: dict) -> dict[str, str]:
    """Bind mounts of repo paths: host path (relative to the repo) -> container path."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target = (volume["source"], volume["target"]) if isinstance(volume, dict) else volume.split(":")[:2]
        if source.startswith((".", "/")):
            mounts[posixpath.normpath(source)] = target
    return mounts


# --- compose file ----------------------------------------------------------------------------------------------


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
            # Compose refuses to start a service whose dependency sits in a profile that is not enabled.
            assert set(services[target].get("profiles", [])) <= set(service.get("profiles", [])), (name, target)
            if spec.get("condition") == "service_completed_successfully":
                assert services[target].get("restart") == "no", f"{target} runs once; compose must not restart it"
            if spec.get("condition") == "service_healthy":
                # The images here define no HEALTHCHECK of their own: without a test, never healthy.
                check = services[target].get("healthcheck", {})
                assert check.get("test") and check["test"] != ["NONE"] and not check.get("disable"), (
                    f"{name} waits for {target} to be healthy; it has no health check")


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
    readable = (settings_env_names(SETTINGS[name.removesuffix("-migrate")]) | gunicorn_env_names()
                | shared.tracing.ENV_VARS)
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
            else:  # the service itself runs as its own role, as its settings' default does
                default = urlsplit(SETTINGS[name.removesuffix("-migrate")].model_fields["database_url"].default)
                assert url.username == default.username != superuser
            if url.password is None:
                assert pg_env.get("POSTGRES_HOST_AUTH_METHOD") == "trust", "no password in the URL, none trusted"
            else:
                assert url.password == pg_env.get("POSTGRES_PASSWORD")


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


# --- Dockerfile ------------------------------------------------------------------------------------------------


def test_dockerfile_passes_hadolint():
    # Warnings fail too: they cover pip's cache (DL3042) and unpinned base images (DL3006/DL3007).
    result = run(BIN / "hadolint", "--no-color", "--failure-threshold", "warning", DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_image_is_slim_python_of_the_projects_version_and_runs_as_non_root():
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    version = re.search(r">=\s*(\d+\.\d+)", requires).group(1)
    bases = [args.split()[0] for op, args in dockerfile_instructions() if op == "FROM"]
    assert bases and all(re.fullmatch(rf"python:{re.escape(version)}(\.\d+)?-slim(-\w+)?", base) for base in bases)
    users = [args.split(":")[0] for op, args in dockerfile_instructions() if op == "USER"]
    assert users and users[-1] not in {"root", "0"}


def test_pip_keeps_no_cache_in_the_image():
    # hadolint's DL3042 only sees a bare `pip`, not /opt/venv/bin/pip or `python -m pip`.
    for op, args in dockerfile_instructions():
        if op == "RUN" and re.search(r"\bpip3?\s+install\b", args):
            for command in re.split(r"&&|;", args):
                if re.search(r"\bpip3?\s+install\b", command):
                    assert "--no-cache-dir" in command, command.strip()


def test_build_context_holds_what_the_image_needs():
    problems, final_stage_files, workdir = [], set(), "/"
    for op, args in dockerfile_instructions():
        if op == "FROM":
            final_stage_files, workdir = set(), "/"
        elif op == "WORKDIR":
            workdir = posixpath.join(workdir, args)
        elif op == "COPY" and not args.startswith("--from"):
            *sources, dest = [arg for arg in args.split() if not arg.startswith("--")]
            for source in sources:
                path = ROOT / source
                files = [path] if path.is_file() else [p for p in path.rglob("*.py") if "tests" not in p.parts]
                problems += [f"COPY {source}: not in the repo"] * (not path.exists())
                problems += [f".dockerignore keeps {relative} out of the build" for relative in
                             (file.relative_to(ROOT).as_posix() for file in files) if not in_build_context(relative)]
                final_stage_files.add(posixpath.normpath(posixpath.join(workdir, dest)))
    # The commands' gunicorn config is a module of the installed package.
    config = gunicorn_config_file(run_sh_gunicorn_config()).relative_to(ROOT).as_posix()
    if not run_sh_gunicorn_config().startswith("python:") or not in_build_context(config):
        problems.append(f"the image has no {run_sh_gunicorn_config()}")
    problems += [f"{path} is in the build context" for path in (".venv/bin/python", ".git/HEAD")
                 if in_build_context(path)]
    assert not problems


def test_dockerignore_matcher_follows_docker_rules():
    # The build-context test leans on this matcher: prove it is not vacuous.
    assert dockerignore_regex("**/tests").match("customer/tests")
    assert dockerignore_regex("**/tests").match("tests")
    assert not dockerignore_regex("*").match("customer/app.py")
    assert dockerignore_regex("*.py[cod]").match("x.pyc")


# --- Prometheus and Grafana ------------------------------------------------------------------------------------


def test_prometheus_scrapes_both_services_on_their_ports(services):
    mounts = volume_mounts(services["prometheus"])
    config_path = next(arg.split("=", 1)[1] for arg in services["prometheus"]["command"]
                       if arg.startswith("--config.file="))
    assert mounts.get("infra/prometheus/prometheus.yml") == config_path
    config = yaml.safe_load((ROOT / "infra" / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    for name in APP_SERVICES:
        job = jobs[name]  # the dashboard selects services by this job label
        targets = [target for static in job["static_configs"] for target in static["targets"]]
        assert targets == [f"{name}:{bind_port(services[name])}"]
        assert ("GET", job.get("metrics_path", "/metrics")) in app_routes(name)


def prometheus_config() -> dict:
    return yaml.safe_load((ROOT / "infra" / "prometheus" / "prometheus.yml").read_text())


def scrape_jobs() -> dict[str, dict]:
    return {job["job_name"]: job for job in prometheus_config()["scrape_configs"]}


def job_targets(job: dict) -> list[str]:
    return [target for static in job["static_configs"] for target in static["targets"]]


def test_prometheus_loads_the_alert_rules_compose_mounts_beside_its_config(services):
    mounts = volume_mounts(services["prometheus"])
    config_dir = posixpath.dirname(mounts["infra/prometheus/prometheus.yml"])
    for path in prometheus_config()["rule_files"]:
        assert mounts.get(posixpath.join("infra/prometheus", path)) == posixpath.join(config_dir, path), path


# Series the rules read from other exporters than the services', with the exporter that has them (names
# checked against RabbitMQ 3.10's rabbitmq_prometheus: `/metrics/detailed?family=...`).
RABBITMQ_QUEUE_SERIES = {"rabbitmq_detailed_queue_consumers": "queue_consumer_count",
                         "rabbitmq_detailed_queue_messages": "queue_coarse_metrics"}
OTHER_SERIES = {"up": "prometheus", "probe_success": "ready", **dict.fromkeys(RABBITMQ_QUEUE_SERIES, "rabbitmq-queues")}


def test_alert_rules_query_only_series_that_are_scraped():
    rules = [rule for group in yaml.safe_load((ROOT / "infra/prometheus/alerts.yml").read_text())["groups"]
             for rule in group["rules"]]
    referenced = set().union(*(promql_series(rule["expr"]) for rule in rules))
    assert {"http_requests_total", "outbox_oldest_pending_seconds", "rabbitmq_detailed_queue_consumers",
            "probe_success"} <= referenced
    unknown = referenced - set(metric_series()) - set(OTHER_SERIES)
    assert not unknown, f"the alert rules read series nothing exports: {sorted(unknown)}"
    jobs = scrape_jobs()
    for series, job in OTHER_SERIES.items():
        if series in referenced and job != "prometheus":
            assert job in jobs, f"{series} comes from the {job} job, which prometheus.yml lacks"
    families = jobs["rabbitmq-queues"]["params"]["family"]
    assert {RABBITMQ_QUEUE_SERIES[s] for s in referenced & set(RABBITMQ_QUEUE_SERIES)} <= set(families)


def test_the_broker_runs_its_prometheus_exporter_where_prometheus_scrapes_it(services):
    rabbitmq = services["rabbitmq"]
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in rabbitmq["volumes"]}
    plugins = (ROOT / mounts["/etc/rabbitmq/enabled_plugins"].removeprefix("./")).read_text()
    assert re.fullmatch(r"\[[\w,\s]*\]\.\s*", plugins), "an Erlang list of atoms, ending with a dot"
    assert {"rabbitmq_management", "rabbitmq_prometheus"} <= set(re.findall(r"\w+", plugins))
    for name in ("rabbitmq", "rabbitmq-queues"):
        [target] = job_targets(scrape_jobs()[name])
        host, port = target.split(":")
        assert host == "rabbitmq" and int(port) in container_ports(rabbitmq) and int(port) == 15692


def test_readiness_is_probed_at_each_services_ready_route(services):
    job = scrape_jobs()["ready"]
    [address] = [c["replacement"] for c in job["relabel_configs"] if c.get("target_label") == "__address__"]
    host, port = address.split(":")
    assert host == "blackbox" and int(port) in container_ports(services["blackbox"])
    blackbox = services["blackbox"]
    config_path = next(arg.split("=", 1)[1] for arg in blackbox["command"] if arg.startswith("--config.file="))
    modules = yaml.safe_load((ROOT / "infra/prometheus/blackbox.yml").read_text())["modules"]
    assert volume_mounts(blackbox)["infra/prometheus/blackbox.yml"] == config_path
    assert job["params"]["module"] == ["http_2xx"] and modules["http_2xx"]["prober"] == "http"
    probed = {static["labels"]["service"]: static["targets"] for static in job["static_configs"]}
    assert set(probed) == set(APP_SERVICES)
    for name, [target] in probed.items():
        url = urlsplit(target)
        assert (url.hostname, url.port) == (name, bind_port(services[name]))
        assert ("GET", url.path) in app_routes(name) and url.path == "/ready"


def test_traces_go_to_jaeger_only_when_asked(services):
    jaeger = services["jaeger"]
    assert environment(jaeger).get("COLLECTOR_OTLP_ENABLED") == "true"
    assert 4318 in container_ports(jaeger)  # OTLP over HTTP, what shared/tracing.py sends
    assert (16686, 16686) in port_mappings(jaeger)  # the UI
    compose_text, readme = COMPOSE_FILE.read_text(), (ROOT / "README.md").read_text()
    for name in APP_SERVICES:
        env = environment(services[name])
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "", "off by default: jaeger runs only with the profile"
        assert env["OTEL_SERVICE_NAME"] == name
        # The aiohttp server instrumentation searches each pattern in the request path.
        excluded = env["OTEL_PYTHON_AIOHTTP_SERVER_EXCLUDED_URLS"].split(",")
        for _, route in app_routes(name):
            quiet = route in {"/health", "/ready", "/metrics"}
            assert any(re.search(pattern, route) for pattern in excluded) == quiet, route
    defaults = re.findall(r"OTEL_EXPORTER_OTLP_ENDPOINT:\s*\$\{OTEL_EXPORTER_OTLP_ENDPOINT:-\}", compose_text)
    assert len(defaults) == len(APP_SERVICES), "an empty default, so that a plain `docker compose up` sends nothing"
    assert "OTEL_EXPORTER_OTLP_ENDPOINT=http://jaeger:4318" in compose_text
    assert "OTEL_EXPORTER_OTLP_ENDPOINT=http://jaeger:4318" in readme
    assert not shared.tracing.tracing_requested(environment(services["order"]))


def test_promql_reader_finds_metric_names():
    expr = ('histogram_quantile(0.95, sum by (job, le) (rate(a_bucket{route="/x", job=~"o.*"}[$__rate_interval])))'
            " / on (job) group_left b_total offset 5m + max(c) * 2e3")
    assert promql_series(expr) == {"a_bucket", "b_total", "c"}


def test_dashboard_queries_only_metrics_the_services_export():
    exported = metric_series()
    assert "http_requests_total" in exported and "http_request_duration_seconds_bucket" in exported
    referenced = set().union(*(promql_series(expr) for expr in dashboard_exprs()))
    assert referenced - set(exported) == set(), "the dashboard queries series no service exports"


def test_dashboard_shows_orders_latency_lag_backlog_and_dead_letters():
    exprs = dashboard_exprs()
    referenced = set().union(*(promql_series(expr) for expr in exprs))
    assert {"http_requests_total", "http_request_duration_seconds_bucket", "event_lag_seconds_bucket",
            "outbox_pending_events", "events_dead_lettered_total"} <= referenced
    quantiles = [expr for expr in exprs if "histogram_quantile" in expr]
    assert quantiles and all(re.search(r"_bucket\b", e) and re.search(r"by \([^)]*\ble\b", e) for e in quantiles)
    routes = {route for name in APP_SERVICES for _, route in app_routes(name)}
    for route in re.findall(r'route="([^"]+)"', "\n".join(exprs)):
        assert route in routes, f"the dashboard filters on route {route!r}, which no service has"


def test_dashboard_uses_the_provisioned_datasource_and_is_provisioned(services):
    grafana = ROOT / "infra" / "grafana"
    (datasource,) = yaml.safe_load((grafana / "provisioning" / "datasources" / "prometheus.yml").read_text())[
        "datasources"]
    url = urlsplit(datasource["url"])
    assert url.hostname == "prometheus" and url.hostname in services
    uids = {panel["datasource"]["uid"] for panel in panels(dashboard()["panels"]) if "datasource" in panel}
    assert uids == {datasource["uid"]}
    jobs = set(re.findall(r'job="(\w+)"', "\n".join(dashboard_exprs())))
    assert jobs <= set(APP_SERVICES)
    mounts = volume_mounts(services["grafana"])
    assert mounts["infra/grafana/provisioning"] == "/etc/grafana/provisioning"
    (provider,) = yaml.safe_load((grafana / "provisioning" / "dashboards" / "dashboards.yml").read_text())["providers"]
    assert mounts["infra/grafana/dashboards"] == provider["options"]["path"]
    home = environment(services["grafana"]).get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
    if home:
        assert (ROOT / "infra/grafana/dashboards" / posixpath.relpath(home, provider["options"]["path"])).is_file()


# --- RabbitMQ users: each service gets only the rights its own calls need ---

DEFINITIONS = json.loads((ROOT / "infra" / "rabbitmq" / "definitions.json").read_text())


def broker_rights(user: str) -> dict[str, re.Pattern]:
    [granted] = [p for p in DEFINITIONS["permissions"] if p["user"] == user and p["vhost"] == "/"]
    return {right: re.compile(granted[right]) for right in ("configure", "write", "read")}


def rabbit_password_matches(user: str, password: str) -> bool:
    [entry] = [u for u in DEFINITIONS["users"] if u["name"] == user]
    assert entry["hashing_algorithm"] == "rabbit_password_hashing_sha256"
    raw = base64.b64decode(entry["password_hash"])
    salt, digest = raw[:4], raw[4:]
    return hashlib.sha256(salt + password.encode()).digest() == digest


@pytest.mark.parametrize("name", APP_SERVICES)
def test_each_service_uses_its_own_broker_user_defined_with_that_password(services, name):
    url = urlsplit(environment(services[name])["AMQP_URL"])
    assert url.username == f"{name}_service"
    assert rabbit_password_matches(url.username, url.password)


def test_the_broker_loads_the_definitions_compose_mounts(services):
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in services["rabbitmq"]["volumes"]}
    conf = (ROOT / mounts["/etc/rabbitmq/conf.d/20-definitions.conf"].removeprefix("./")).read_text()
    assert "load_definitions = /etc/rabbitmq/definitions.json" in conf
    assert mounts["/etc/rabbitmq/definitions.json"] == "./infra/rabbitmq/definitions.json"


def test_the_customer_service_may_do_exactly_what_its_consumer_does():
    settings, rights = CustomerSettings(), broker_rights("customer_service")
    exchange, queue = settings.events_exchange, settings.orders_queue
    dlx, dlq = settings.dead_letter_exchange, settings.dead_letter_queue
    retry, retries = settings.retry_exchange, {settings.retry_queue(delay) for delay in settings.retry_delays}
    needed = {  # declare them all; bind (write queue, read exchange); consume; dead-letter and retry (write)
        "configure": {exchange, dlx, queue, dlq, retry, *retries}, "write": {queue, dlq, dlx, retry, *retries},
        "read": {exchange, dlx, queue, retry},
    }
    for right, names in needed.items():
        assert all(rights[right].match(n) for n in names), right
    assert not rights["write"].match(exchange)  # it cannot publish order events itself


def test_the_order_service_may_only_publish_to_the_orders_exchange():
    settings, rights = OrderSettings(), broker_rights("order_service")
    assert rights["configure"].match(settings.events_exchange) and rights["write"].match(settings.events_exchange)
    consumer = CustomerSettings()
    for other in (consumer.orders_queue, consumer.dead_letter_queue, consumer.dead_letter_exchange):
        assert not any(pattern.match(other) for pattern in rights.values()), other
    assert not rights["read"].match(settings.events_exchange)
