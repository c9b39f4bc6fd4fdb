"""The use cases: what cstor does to migrations and their objects, as eventsourcing events.

Nothing here does I/O of its own: the application runs on whichever persistence the
eventsourcing library is given (Postgres in the services, its in-memory POPO recorder in
the unit tests), and the few lookups the use cases make beyond the library's own go
through `cstor.app.lookup.EventLookup`, which the Postgres recorder implements in one SQL
statement.
"""
