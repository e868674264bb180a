"""pytest plugin (registered through the ``pytest11`` entry point): the ``td_signals`` fixture."""
