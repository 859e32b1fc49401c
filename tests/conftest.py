import os


# The plugin reads its settings from the environment too: never let the
# developer's environment leak into the tests.
for name in list(os.environ):
    if name.startswith(("KINTO_CHANGES_", "CHANGES_", "KINTO_EVENT_LISTENERS", "KINTO_MONITOR")):
        if name != "KINTO_CHANGES_TEST_DB":
            del os.environ[name]
