"""The rehearsal: the real program applied to real local servers, then a day in the fleet's life.

servers.py (moto_server, OpenBao on loopback), apply.py (Pulumi mocks that apply each resource
through boto3/hvac), terraform.py (the AWS provider's validators, offline), day.py (the scripted
day), fake_provider.py (a loopback stand-in for the provider's admin API), run.py (all of it,
and the report). Used by `agentfleet rehearse` and by tests/test_rehearse.py.
"""
