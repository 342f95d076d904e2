#!/bin/sh
# Runs the whole test suite (as root): unit tests, then integration tests that start private daemons.
set -eu
cd "$(dirname "$0")"
. ./contrib/deps.sh
install_deps
install_test_deps
cargo build --workspace --locked
# Every tool the tests use is installed above: a test that finds one missing fails instead of skipping.
# Unit tests that need root are `#[ignore]`d with the reason (a plain `cargo test` as a user lists them as ignored);
# this script runs as root and includes them.
BERTH_TESTS_STRICT=1 cargo test --workspace --locked --no-fail-fast -- --include-ignored --test-threads="${BERTH_TEST_THREADS:-4}"
