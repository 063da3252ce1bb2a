"""Entry points: the CLI, the papermill runner and its kernel, and notifications."""
