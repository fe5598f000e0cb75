"""Real servers started on loopback for the demo (`make run`), the tests and
the benchmarks: sshd, memcached, a JVM with JMX remote, moto, an SMTP server,
Celery workers. Never used by production code paths.
"""
