"""A test-only third counter source, "constant": every counter always reads
its configured value. It lives entirely here (model, source, registration)
and is installed only by tests/settings.py, to prove that a source plugs in
without any other module naming it (tests/monitoring/test_constant_source.py).
"""
