"""Shared pytest set-up: the hypothesis profiles, and measurements printed at the end.

`ci` (chosen when the CI variable is set) is derandomized, so a CI run is
reproducible; `dev` explores new examples on every run. Neither has a
deadline: timing is for benchmarks/, never for tests.

Some tests measure the book as they check it (the main line's reading time,
axe-core's moderate and minor findings); they attach the measurement with
pytest's ``record_property`` and it is printed in the summary at the end of the
run, also under pytest-xdist, where a test's own output is not shown.
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile("ci", deadline=None, derandomize=True, max_examples=60, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", deadline=None, max_examples=60)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

# record_property names whose values are printed at the end of the run.
MEASUREMENTS = {"reading_time": "Reading time of the chapters (tests/test_notebooks.py)",
                "axe_minor": "axe-core, moderate and minor findings (not failures)"}


def pytest_terminal_summary(terminalreporter):
    found = {name: [] for name in MEASUREMENTS}
    for reports in terminalreporter.stats.values():
        for rep in reports:
            if getattr(rep, "when", None) != "call":
                continue
            for name, value in getattr(rep, "user_properties", []):
                if name in found and value:
                    found[name].append(str(value))
    for name, values in found.items():
        if values:
            terminalreporter.section(MEASUREMENTS[name])
            for value in sorted(values):
                terminalreporter.write_line(value)
