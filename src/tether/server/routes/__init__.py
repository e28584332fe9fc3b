"""The API's routers, one per resource: ``health`` (health and ``/metrics``), ``runs``
(runs and their steps), ``events`` (a run's events, their stream, the diff of two
checkpoints), ``variables``
(a run's variables)."""
