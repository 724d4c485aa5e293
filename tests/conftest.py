"""What every level of the suite shares. The levels, each with its own conftest.py:

- tests/unit/: pure logic, no AWS (a botocore request there fails the test);
- tests/functional/: the app and the stores in-process against moto (``mock_aws``);
- tests/e2e/: the running local stack (emulator, ``chalice local``, the browser).
"""
