"""infra/Dockerfile: hadolint, the base image and user, no pip cache, and a build context that holds
what the image needs (and follows .dockerignore as Docker reads it)."""

import posixpath
import re
import tomllib

from tests.infra_files import (
    BIN,
    DOCKERFILE,
    ROOT,
    dockerfile_instructions,
    dockerignore_regex,
    gunicorn_config_file,
    in_build_context,
    run,
    run_sh_gunicorn_config,
)


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
                problems += [
                    f".dockerignore keeps {relative} out of the build"
                    for relative in (file.relative_to(ROOT).as_posix() for file in files)
                    if not in_build_context(relative)
                ]
                final_stage_files.add(posixpath.normpath(posixpath.join(workdir, dest)))
    # The commands' gunicorn config is a module of the installed package.
    config = gunicorn_config_file(run_sh_gunicorn_config()).relative_to(ROOT).as_posix()
    if not run_sh_gunicorn_config().startswith("python:") or not in_build_context(config):
        problems.append(f"the image has no {run_sh_gunicorn_config()}")
    problems += [
        f"{path} is in the build context" for path in (".venv/bin/python", ".git/HEAD") if in_build_context(path)
    ]
    assert not problems


def test_dockerignore_matcher_follows_docker_rules():
    # The build-context test leans on this matcher: prove it is not vacuous.
    assert dockerignore_regex("**/tests").match("customer/tests")
    assert dockerignore_regex("**/tests").match("tests")
    assert not dockerignore_regex("*").match("customer/app.py")
    assert dockerignore_regex("*.py[cod]").match("x.pyc")
