"""Built-in explainers and checks, each an ordinary plugin module registered through the hooks."""
