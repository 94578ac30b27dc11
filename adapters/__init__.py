"""Model adapters: each turns one kind of model (object or file) into a ``xaudit.Model``.

Framework imports happen inside the adapter modules' functions, never when ``xaudit`` is
imported.
"""
