"""Code that runs inside an agent (not in the stack): keyless logins and token exchanges.

Standard library only, plus the caller's boto3 STS client, so an agent can vendor it.
"""
