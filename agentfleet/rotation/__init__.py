"""Secrets Manager rotation functions for the agent fleet (deployed as Lambda code).

Runtime imports are the standard library and boto3/botocore only (both ship with the Lambda
Python runtime), so the archive holds just this package. Entry points:
`rotation.handler.lambda_handler` (rotation steps, revocation sweeps, emergency rotation) and
`rotation.age.lambda_handler` (daily secret-age metric for the manual-rotation alarms).
"""
