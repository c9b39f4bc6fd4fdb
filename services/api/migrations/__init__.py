"""Migrations: the request (schemas, request checks, the form), the use cases (commands,
control), and the REST routes and pages over them."""
