"""The alert rules in infra/prometheus/: well-formed, each unit-tested by promtool, documented, and evaluated by a
real Prometheus against the real services.

promtool and prometheus come with Debian's `prometheus` package (infra/scripts/install-test-deps.sh installs it
for `make test`); where they are missing, the tests that run them are skipped with that reason.
"""

import re
import shutil
import subprocess
from pathlib import Path

import aiohttp
import pytest
import yaml

from shared.testing import prometheus
from shared.testing.docs import anchor
from shared.testing.plugin import eventually, unique
from shared.testing.prometheus import api

ROOT = Path(__file__).resolve().parents[1]
PROMETHEUS_DIR = ROOT / "infra" / "prometheus"
RULES = PROMETHEUS_DIR / "alerts.yml"
RULE_TESTS = PROMETHEUS_DIR / "alerts_test.yml"
SEVERITIES = {"critical", "warning"}
PROMTOOL = shutil.which("promtool")
AMTOOL = shutil.which("amtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason=f"promtool {prometheus.MISSING}")
ALERTMANAGER_CONFIG = ROOT / "infra" / "alertmanager" / "alertmanager.yml"


def alert_rules() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


RUNBOOKS = ROOT / "docs" / "operations.md"


def runbook_sections() -> dict[str, str]:
    """Each section of docs/operations.md's Alerts part, by its anchor: what the alert means, what to do."""
    alerts = RUNBOOKS.read_text().split("\n## Alerts\n", 1)[1].split("\n## ", 1)[0]
    sections = alerts.split("\n### ")[1:]
    return {anchor(section.split("\n", 1)[0]): section.split("\n", 1)[1] for section in sections}


def promtool(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([PROMTOOL, *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=60)


# --- the rules as files ----------------------------------------------------------------------------------------


@needs_promtool
def test_shipped_config_and_rules_pass_promtool_check():
    result = promtool("check", "config", PROMETHEUS_DIR / "prometheus.yml")  # follows rule_files too
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


@pytest.mark.skipif(
    AMTOOL is None, reason="amtool not installed: Debian's `prometheus-alertmanager` has it (install-test-deps.sh)"
)
def test_the_alertmanager_config_passes_amtool_and_routes_each_severity():
    result = subprocess.run([AMTOOL, "check-config", ALERTMANAGER_CONFIG], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
    for severity in sorted(SEVERITIES):
        # Where an alert of each severity goes: the receiver of its own name.
        routed = subprocess.run(
            [AMTOOL, "config", "routes", "test", f"--config.file={ALERTMANAGER_CONFIG}", f"severity={severity}"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert routed.stdout.split() == [severity], routed.stdout + routed.stderr


@needs_promtool
def test_every_alert_passes_its_promtool_unit_tests():
    result = promtool("test", "rules", RULE_TESTS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_for_a_severity_and_the_annotations_alertmanager_templates_read():
    sections = runbook_sections()
    for rule in alert_rules():
        name = rule["alert"]
        assert re.fullmatch(r"[1-9]\d*[smh]", str(rule.get("for", ""))), f"{name}: no `for:`, it fires on one blip"
        assert rule["labels"]["severity"] in SEVERITIES, name
        annotations = rule["annotations"]
        assert set(annotations) == {"summary", "description", "runbook_url"}, name
        assert all("\n" not in text for text in annotations.values()), name
        assert len(annotations["summary"]) < len(annotations["description"]), f"{name}: the summary is the short one"
        # The section of docs/operations.md that says what it means and what to do, by its path in the repo.
        assert annotations["runbook_url"] == f"{RUNBOOKS.relative_to(ROOT)}#{anchor(name)}", name
        assert anchor(name) in sections, f"docs/operations.md has no Alerts section for {name}"
        severity, wait = rule["labels"]["severity"], rule["for"]
        assert sections[anchor(name)].strip().startswith(f"*{severity}, for {wait}.*"), name


def test_every_alert_has_unit_tests_that_see_it_fire_and_stay_quiet():
    tests = yaml.safe_load(RULE_TESTS.read_text())
    assert tests["rule_files"] == [RULES.name]
    cases = [case for test in tests["tests"] for case in test["alert_rule_test"]]
    for name in (rule["alert"] for rule in alert_rules()):
        mine = [case for case in cases if case["alertname"] == name]
        assert any(case["exp_alerts"] for case in mine), f"no test sees {name} fire"
        assert any(not case["exp_alerts"] for case in mine), f"no test sees {name} stay quiet"
    assert {case["alertname"] for case in cases} <= {rule["alert"] for rule in alert_rules()}


# --- a real Prometheus against the real services ---------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(prometheus.PROMETHEUS is None, reason=f"prometheus {prometheus.MISSING}")
async def test_prometheus_scrapes_both_services_and_evaluates_the_shipped_rules(start_services, tmp_path):
    services = await start_services(WORKERS="1")
    shipped = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in shipped["scrape_configs"]}
    # The shipped config and rules with the services' real addresses; the broker's exporter and the blackbox
    # prober are not started here, so their jobs are left out (their alerts are covered by alerts_test.yml).
    config = {
        "global": {**shipped["global"], "scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(PROMETHEUS_DIR / path) for path in shipped["rule_files"]],
        "scrape_configs": [
            {**jobs[name], "static_configs": [{"targets": [url.removeprefix("http://")]}]}
            for name, url in (("customer", services.customer_url), ("order", services.order_url))
        ],
    }
    async with prometheus.running(config, tmp_path) as base, aiohttp.ClientSession() as session:
        async with session.post(
            f"{services.customer_url}/customers", json={"customer": {"name": unique("Prom"), "address": "Here"}}
        ) as response:
            assert response.status == 201

        async def created_customer_counted():
            query = 'http_requests_total{job="customer", route="/customers", method="POST", status="201"}'
            result = await api(session, f"{base}/api/v1/query", query=query)
            assert result["result"] and float(result["result"][0]["value"][1]) >= 1, result

        await eventually(created_customer_counted, timeout=60, interval=0.25)

        # Every series the rules read from the services is there under that name, and every rule
        # evaluates without an error against what the services really export.
        service_series = {
            "up",
            "http_requests_total",
            "http_requests_refused_total",
            "consumer_breaker_open",
            "outbox_oldest_pending_seconds",
            "event_lag_seconds_bucket",
            "events_dead_lettered_total",
        }
        rules_text = RULES.read_text()
        assert all(re.search(rf"\b{name}\b", rules_text) for name in service_series)

        async def all_series_scraped():
            # With PROMETHEUS_MULTIPROC_DIR (run.sh sets it) a gauge appears once set: the outbox age
            # after the first housekeeping round, 5 s after start.
            for name in sorted(service_series):
                result = await api(session, f"{base}/api/v1/query", query=f'count({{__name__="{name}"}})')
                assert result["result"], f"no {name} series in what Prometheus scraped"

        await eventually(all_series_scraped, timeout=60, interval=0.5)

        async def rules_evaluated():
            groups = (await api(session, f"{base}/api/v1/rules"))["groups"]
            evaluated = {rule["name"]: rule for group in groups for rule in group["rules"]}
            assert set(evaluated) == {rule["alert"] for rule in alert_rules()}
            for rule in evaluated.values():
                assert rule["health"] == "ok", rule

        await eventually(rules_evaluated, timeout=30, interval=0.25)

        # Both services stop (run.sh stops them together): ServiceDown goes pending for each.
        await services.stop()

        async def service_down_pending():
            alerts = (await api(session, f"{base}/api/v1/alerts"))["alerts"]
            down = {a["labels"]["job"] for a in alerts if a["labels"]["alertname"] == "ServiceDown"}
            assert down == {"customer", "order"}, alerts

        await eventually(service_down_pending, timeout=30, interval=0.25)
