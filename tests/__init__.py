"""The test suite, laid out like `shared/`; helpers live in `tests/support/`."""
