"""schemathesis's command line, with one CPython 3.11 bug kept out of the
verdict.

Hypothesis names each filtered strategy after its lambda's source, which
it reads with `ast.parse`; on CPython 3.11 that parse can fail with
`SystemError: AST constructor recursion depth mismatch` (a bug of the
interpreter, not of the source), and schemathesis then reports a "Runtime
Error" for whichever operation it was generating. The name is only a
description, so when the parse fails the lambda is described generically
and the run goes on; every request and check is unchanged.
"""

import sys

from hypothesis.internal import lambda_sources

_describe = lambda_sources.lambda_description


def _describe_or_generic(f):
    try:
        return _describe(f)
    except SystemError:
        return "lambda *args: <unknown>"


lambda_sources.lambda_description = _describe_or_generic

from schemathesis.cli import schemathesis  # noqa: E402

if __name__ == "__main__":
    sys.argv[0] = "schemathesis"
    sys.exit(schemathesis())
