"""Prometheus, its alert rules, Alertmanager, Grafana and the trace pipeline as compose runs them: every
scrape target, rule and dashboard query names a series something really exports."""

import posixpath
import re
from urllib.parse import urlsplit

import yaml

import shared.admission
import shared.metrics
import shared.tracing
from shared.testing.compose import COMPOSE_FILE, environment
from tests.infra_files import (
    APP_SERVICES,
    ROOT,
    app_routes,
    bind_port,
    container_ports,
    dashboard,
    dashboard_exprs,
    metric_series,
    panels,
    port_mappings,
    promql_series,
    volume_mounts,
)


def test_prometheus_scrapes_both_services_on_their_ports(services):
    mounts = volume_mounts(services["prometheus"])
    config_path = next(
        arg.split("=", 1)[1] for arg in services["prometheus"]["command"] if arg.startswith("--config.file=")
    )
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
RABBITMQ_QUEUE_SERIES = {
    "rabbitmq_detailed_queue_consumers": "queue_consumer_count",
    "rabbitmq_detailed_queue_messages": "queue_coarse_metrics",
    "rabbitmq_detailed_queue_messages_ready": "queue_coarse_metrics",
    "rabbitmq_detailed_queue_messages_unacked": "queue_coarse_metrics",
}
OTHER_SERIES = {"up": "prometheus", "probe_success": "ready", **dict.fromkeys(RABBITMQ_QUEUE_SERIES, "rabbitmq-queues")}


def test_alert_rules_query_only_series_that_are_scraped():
    rules = [
        rule
        for group in yaml.safe_load((ROOT / "infra/prometheus/alerts.yml").read_text())["groups"]
        for rule in group["rules"]
    ]
    referenced = set().union(*(promql_series(rule["expr"]) for rule in rules))
    assert {
        "http_requests_total",
        "outbox_oldest_pending_seconds",
        "rabbitmq_detailed_queue_consumers",
        "probe_success",
    } <= referenced
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


def test_traces_go_through_the_collector_to_jaeger_only_when_asked(services):
    collector, jaeger = services["otel-collector"], services["jaeger"]
    assert re.fullmatch(r"otel/opentelemetry-collector-contrib:\d+\.\d+\.\d+", collector["image"])
    assert re.fullmatch(r"jaegertracing/jaeger:2\.\d+\.\d+", jaeger["image"]), "Jaeger v2, not v1's all-in-one"
    config_path = next(arg.split("=", 1)[1] for arg in collector["command"] if arg.startswith("--config="))
    assert volume_mounts(collector)["infra/otel-collector/config.yml"] == config_path
    config = yaml.safe_load((ROOT / "infra/otel-collector/config.yml").read_text())
    assert config["receivers"]["otlp"]["protocols"]["http"]["endpoint"].endswith(":4318")
    assert 4318 in container_ports(collector)  # OTLP over HTTP, what shared/tracing.py sends
    pipeline = config["service"]["pipelines"]["traces"]
    assert pipeline["receivers"] == ["otlp"] and "batch" in pipeline["processors"]
    assert set(pipeline["processors"]) <= set(config["processors"])
    [exporter] = pipeline["exporters"]
    host, port = config["exporters"][exporter]["endpoint"].split(":")
    assert host == "jaeger" and int(port) in container_ports(jaeger)
    assert (16686, 16686) in port_mappings(jaeger)  # the UI
    compose_text, operations = COMPOSE_FILE.read_text(), (ROOT / "docs" / "operations.md").read_text()
    for name in APP_SERVICES:
        env = environment(services[name])
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "", "off by default: the collector runs only with the profile"
        assert env["OTEL_SERVICE_NAME"] == name
        # The aiohttp server instrumentation searches each pattern in the request path.
        excluded = env["OTEL_PYTHON_AIOHTTP_SERVER_EXCLUDED_URLS"].split(",")
        for _, route in app_routes(name):
            quiet = route in {"/health", "/ready", "/metrics"}
            assert any(re.search(pattern, route) for pattern in excluded) == quiet, route
    defaults = re.findall(r"OTEL_EXPORTER_OTLP_ENDPOINT:\s*\$\{OTEL_EXPORTER_OTLP_ENDPOINT:-\}", compose_text)
    assert len(defaults) == len(APP_SERVICES), "an empty default, so that a plain `docker compose up` sends nothing"
    assert "OTEL_EXPORTER_OTLP_ENDPOINT=http://otel-collector:4318" in compose_text
    assert "OTEL_EXPORTER_OTLP_ENDPOINT=http://otel-collector:4318" in operations
    assert not shared.tracing.tracing_requested(environment(services["order"]))


def test_prometheus_sends_alerts_to_the_alertmanager_compose_runs_with_its_config(services):
    alertmanager = services["alertmanager"]
    assert alertmanager["profiles"] == ["observability"] == services["prometheus"]["profiles"]
    config_path = next(arg.split("=", 1)[1] for arg in alertmanager["command"] if arg.startswith("--config.file="))
    assert volume_mounts(alertmanager)["infra/alertmanager/alertmanager.yml"] == config_path
    [target] = [
        target
        for manager in prometheus_config()["alerting"]["alertmanagers"]
        for static in manager["static_configs"]
        for target in static["targets"]
    ]
    host, port = target.split(":")
    assert host == "alertmanager" and int(port) in container_ports(alertmanager)


def test_promql_reader_finds_metric_names():
    expr = (
        'histogram_quantile(0.95, sum by (job, le) (rate(a_bucket{route="/x", job=~"o.*"}[$__rate_interval])))'
        " / on (job) group_left b_total offset 5m + max(c) * 2e3"
    )
    assert promql_series(expr) == {"a_bucket", "b_total", "c"}


def test_dashboard_queries_only_metrics_the_services_and_the_broker_export():
    exported = metric_series()
    assert "http_requests_total" in exported and "http_request_duration_seconds_bucket" in exported
    referenced = set().union(*(promql_series(expr) for expr in dashboard_exprs()))
    unknown = referenced - set(exported) - set(RABBITMQ_QUEUE_SERIES)
    assert not unknown, f"the dashboard queries series nothing exports: {sorted(unknown)}"
    families = scrape_jobs()["rabbitmq-queues"]["params"]["family"]
    assert {RABBITMQ_QUEUE_SERIES[s] for s in referenced & set(RABBITMQ_QUEUE_SERIES)} <= set(families)


def test_dashboard_selects_services_by_its_job_and_instance_variables():
    variables = {variable["name"]: variable for variable in dashboard()["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    for name in ("job", "instance"):
        assert variables[name]["type"] == "query" and variables[name]["includeAll"], name
        assert variables[name]["datasource"]["uid"] == "${datasource}", name
    assert "$job" in variables["instance"]["query"]["query"]  # the instances of the services chosen
    for expr in dashboard_exprs():
        if promql_series(expr) - set(RABBITMQ_QUEUE_SERIES):  # a service's series: the chosen ones only
            selectors = re.findall(r"\b[a-z_]+\{([^}]*)\}", expr)
            assert selectors and all('job=~"$job"' in s and 'instance=~"$instance"' in s for s in selectors), expr


def test_dashboard_has_a_row_for_traffic_protection_the_event_path_and_resources():
    rows = [panel["title"] for panel in dashboard()["panels"] if panel["type"] == "row"]
    assert rows == ["Traffic", "Protection", "Event path", "Resources"]
    referenced = set().union(*(promql_series(expr) for expr in dashboard_exprs()))
    assert {
        "http_requests_refused_total",
        "http_requests_in_flight",
        "http_request_queue_seconds_bucket",
        "event_loop_lag_seconds",
        "consumer_breaker_open",
        "customer_service_breaker_open",
        "outbox_oldest_pending_seconds",
        "events_duplicate_total",
        "events_retried_total",
        "rabbitmq_detailed_queue_messages_ready",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
    } <= referenced


def test_dashboard_shows_orders_latency_lag_backlog_and_dead_letters():
    exprs = dashboard_exprs()
    referenced = set().union(*(promql_series(expr) for expr in exprs))
    assert {
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "event_lag_seconds_bucket",
        "outbox_pending_events",
        "events_dead_lettered_total",
    } <= referenced
    quantiles = [expr for expr in exprs if "histogram_quantile" in expr]
    assert quantiles and all(re.search(r"_bucket\b", e) and re.search(r"by \([^)]*\ble\b", e) for e in quantiles)
    routes = {route for name in APP_SERVICES for _, route in app_routes(name)}
    for route in re.findall(r'route="([^"]+)"', "\n".join(exprs)):
        assert route in routes, f"the dashboard filters on route {route!r}, which no service has"


def test_dashboard_uses_the_provisioned_datasource_and_is_provisioned(services):
    grafana = ROOT / "infra" / "grafana"
    (datasource,) = yaml.safe_load((grafana / "provisioning" / "datasources" / "prometheus.yml").read_text())[
        "datasources"
    ]
    url = urlsplit(datasource["url"])
    assert url.hostname == "prometheus" and url.hostname in services
    # Every panel and query reads the data source the variable names, which defaults to the provisioned one.
    items = [item for panel in panels(dashboard()["panels"]) for item in (panel, *panel.get("targets", []))]
    assert {item["datasource"]["uid"] for item in items if "datasource" in item} == {"${datasource}"}
    (variable,) = [v for v in dashboard()["templating"]["list"] if v["name"] == "datasource"]
    assert variable["current"]["value"] == datasource["uid"]
    jobs = set(re.findall(r'job="(\w+)"', "\n".join(dashboard_exprs())))
    assert jobs <= set(APP_SERVICES)
    mounts = volume_mounts(services["grafana"])
    assert mounts["infra/grafana/provisioning"] == "/etc/grafana/provisioning"
    (provider,) = yaml.safe_load((grafana / "provisioning" / "dashboards" / "dashboards.yml").read_text())["providers"]
    assert mounts["infra/grafana/dashboards"] == provider["options"]["path"]
    home = environment(services["grafana"]).get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
    if home:
        assert (ROOT / "infra/grafana/dashboards" / posixpath.relpath(home, provider["options"]["path"])).is_file()
