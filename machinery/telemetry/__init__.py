"""What an operator sees of a running machinery: Prometheus metrics, OpenTelemetry traces, JSON logs.

A leaf package like :mod:`machinery.errors`: every layer may record into it, and it imports nothing of
the layers above. OpenTelemetry is optional (the ``otel`` extra) and imported only when tracing is on.
"""
