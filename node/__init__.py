"""One agency's barnplan node: config, store, services, web app and the ``barnplan`` CLI."""
