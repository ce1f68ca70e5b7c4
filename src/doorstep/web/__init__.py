"""Transport only: the app factory, API routers and pages. No business rules here."""
