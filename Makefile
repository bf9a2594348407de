# The two quick-start commands are `make run` and `make test`; everything else is what they need.
.DEFAULT_GOAL := run
UV ?= uv
PYTEST_ARGS ?=

.PHONY: run test test-fast install browser-assets check bench clean

## Install Python dependencies (locked in uv.lock) and build the browser assets.
install: .venv/.installed static/vendor/socket.io.min.js

.venv/.installed: pyproject.toml uv.lock
	@command -v $(UV) >/dev/null || python3 -m pip install --quiet uv
	$(UV) sync --locked
	@touch $@

static/vendor/socket.io.min.js: package.json package-lock.json scripts/copy-vendor.mjs
	npm ci --no-audit --no-fund
	npm run build

## Run the service on the embedded default (SQLite + local files in ./data) on port 8000 of every
## interface; its first line names the address guests on the local network use
run: install
	$(UV) run --locked imageshark serve

## Run the whole test suite (needs PostgreSQL and Redis on localhost, and Debian's chromium);
## .ci/run runs this. The 20 slowest tests are listed at the end.
test: install
	$(UV) run --locked pytest -n 2 --dist loadgroup --durations=20 $(PYTEST_ARGS)

## The quick tier while working (needs PostgreSQL and Redis): the whole suite without the browser
## tests, the server-process tests, the deployment checks and the API fuzzer (markers in
## tests/conftest.py and tests/web/test_openapi.py).
test-fast: install
	$(UV) run --locked pytest -n 2 --dist loadgroup -m "not browser and not processes and not deploy and not fuzz" --durations=25 $(PYTEST_ARGS)

## Type-check and lint: the Python, and the browser modules' JSDoc types (jsconfig.json).
check: install
	$(UV) run --locked ruff check .
	$(UV) run --locked ruff format --check .
	$(UV) run --locked mypy
	npx --no-install tsc --noEmit -p jsconfig.json

clean:
	rm -rf .venv node_modules static/vendor
