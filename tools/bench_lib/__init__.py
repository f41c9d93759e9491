"""tools/bench's parts: /proc accounting (procstat), the shared client and
sink (load), a tool-managed Postfix instance (postfix), the systems under
test (systems), the measured phases (phases) and the report (report).

Runs on Debian 12's /usr/bin/python3; standard library plus the repository's
tests/integration/relaysim.py (python3-pexpect) for the appliance's console.
"""
