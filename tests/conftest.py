"""Hypothesis profiles: CI runs derandomized (the same examples every run, so a red CI is
reproducible); locally the default profile keeps exploring new examples."""

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
