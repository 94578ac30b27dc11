"""Integrations with tools around an audit (experiment trackers), each an optional extra."""
