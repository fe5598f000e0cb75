"""Real servers on loopback for development: sshd, memcached, a JVM with JMX
remote, moto (EC2 and load balancers), an SMTP server, Celery workers with the
harness's probe tasks, Puppet sealed in loopback.

The tests (tests/fixtures/*), the benchmarks (bench/) and the demo (`make run`,
scripts/run.py) start what they need from here. Production never imports this
package: it lives outside pyscaler/ and apps/, the Docker image leaves it out,
and tests/harness/test_production_boundary.py checks both.
"""
