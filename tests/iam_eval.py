"""The IAM evaluator lives in the package (the rehearsal uses it at run time); tests import it from here too."""

from agentfleet.review.iam_eval import *  # noqa: F401,F403
from agentfleet.review.iam_eval import Request, allows, as_list, condition_holds, evaluate, ip_in, statement_applies, wildcard_match  # noqa: F401
