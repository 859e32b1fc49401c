import os


# The plugin reads its settings from the environment too: never let the
# developer's environment leak into the tests.
for name in list(os.environ):
    if name.startswith(("KINTO_CHANGES_", "CHANGES_", "KINTO_EVENT_LISTENERS", "KINTO_MONITOR")):
        if name not in ("KINTO_CHANGES_TEST_DB", "KINTO_CHANGES_CONVERGENCE_STEPS"):
            del os.environ[name]


def pytest_collection_modifyitems(config, items):
    """Run a web test class only on the backends it lists (``backends`` attribute).

    Some behaviours need two apps sharing one database: they exist on
    PostgreSQL only, and are not generated (rather than skipped) on memory.
    """
    kept, dropped = [], []
    for item in items:
        backends = getattr(item.cls, "backends", None)
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("_app") if callspec else None
        (dropped if backends and backend and backend not in backends else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
